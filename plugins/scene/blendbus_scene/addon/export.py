"""Exporting the scene to a file in the peer's output folder. Runs inside Blender (bpy only)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import bpy

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
    before = set(final.parent.iterdir())
    result = _operator(op_path)(filepath=str(final), **options, **{selection_option: selected_only})
    if "FINISHED" not in result:
        raise RuntimeError(f"{op_path} did not finish ({', '.join(result)}); see Blender's console")
    written = sorted({final, *(set(final.parent.iterdir()) - before)})  # glTF writes its .bin beside it
    return {"filepath": str(final), "format": fmt, "bytes": sum(p.stat().st_size for p in written if p.is_file()),
            "files": [str(p) for p in written], "objects": len(objects)}
