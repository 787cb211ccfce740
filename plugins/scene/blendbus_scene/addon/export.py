"""Exporting the scene to a file in the peer's output folder. Runs inside Blender (bpy only).

Exporters name the texture files they write after the images in the scene (glTF from an image's
name, USD into `textures/`), and a name is whatever a scene says: an image named `../../../x` was
written outside the folder. So for the export every image carries a name that is a plain file name,
and what the export refers to is checked afterwards; an export that would leave the folder is
refused and what it wrote removed.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import bpy
from blendbus_addon.references import outside_references

FORMATS: dict[str, tuple[str, dict[str, Any], str, str]] = {
    # format: (operator, its fixed options, file suffix, the option that limits it to the selection)
    "glb": ("export_scene.gltf", {"export_format": "GLB"}, ".glb", "use_selection"),
    "gltf": ("export_scene.gltf", {"export_format": "GLTF_SEPARATE"}, ".gltf", "use_selection"),
    "fbx": ("export_scene.fbx", {}, ".fbx", "use_selection"),
    "obj": ("wm.obj_export", {}, ".obj", "export_selected_objects"),
    "usd": ("wm.usd_export", {}, ".usdc", "selected_objects_only"),
    "stl": ("wm.stl_export", {}, ".stl", "export_selected_objects"),
    "ply": ("wm.ply_export", {}, ".ply", "export_selected_objects"),
}


def _operator(path: str) -> Any | None:
    module, name = path.split(".")
    op = getattr(getattr(bpy.ops, module), name)
    try:  # hasattr(bpy.ops.x, "y") is always true: only get_rna_type() tells whether it exists
        op.get_rna_type()
    except (KeyError, AttributeError, RuntimeError):
        return None
    return op


def available() -> list[str]:
    """The formats this Blender can write."""
    return [fmt for fmt, (op, *_rest) in FORMATS.items() if _operator(op) is not None]


def export_scene(format: str, job: Any, filepath: str | None = None, selected_only: bool = False) -> dict[str, Any]:
    fmt = format.lower()
    if fmt not in FORMATS or _operator(FORMATS[fmt][0]) is None:
        raise ValueError(f"this Blender ({bpy.app.version_string}) cannot export {format!r}; it can export"
                         f" {', '.join(available())}")
    op_path, options, suffix, selection_option = FORMATS[fmt]
    objects = [o for o in bpy.context.scene.objects if not selected_only or o.select_get()]
    if not objects:
        raise ValueError("nothing to export: " + ("no object is selected" if selected_only else "the scene is empty"))
    final = job.outputs.output(filepath, suffix=suffix, stem="scene")
    before = set(final.parent.rglob("*"))
    with _plain_image_names():
        result = _operator(op_path)(filepath=str(final), **options, **{selection_option: selected_only})
    written = sorted({final, *(set(final.parent.rglob("*")) - before)})  # a .bin, textures/ beside it
    if "FINISHED" not in result:
        raise RuntimeError(f"{op_path} did not finish ({', '.join(result)}); see Blender's console")
    escaping = outside_references(final, job.outputs.root)
    if escaping:
        for path in written:
            if path.is_file():
                path.unlink()
        raise PermissionError(f"the export refers to files outside the output folder ({escaping[0][:200]!r});"
                              " it was removed")
    return {"filepath": str(final), "format": fmt, "bytes": sum(p.stat().st_size for p in written if p.is_file()),
            "files": [str(p) for p in written if p.is_file()], "objects": len(objects)}


_UNSAFE = re.compile(r"[^A-Za-z0-9 ._-]+")


def plain_file_name(name: str) -> str:
    """`name` as a file name that stays where it is written: no separators, no `..`, no leading dot."""
    return _UNSAFE.sub("_", name).replace("..", "_").strip(" .")[:100] or "image"


@contextmanager
def _plain_image_names() -> Iterator[None]:
    """Every image named as a plain file name for the duration (the exporters write textures by name)."""
    renamed = []
    for image in bpy.data.images:
        plain = plain_file_name(image.name)
        if plain != image.name:
            renamed.append((image, image.name))
            image.name = plain
    try:
        yield
    finally:
        for image, name in reversed(renamed):
            image.name = name
