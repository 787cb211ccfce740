"""Importing a downloaded or generated model into the scene, for every asset plugin.

One way to do it: refuse a model that refers to files outside its download folder (references.py),
import by file type, check that the importer loaded no file from outside that folder either, pack
the images (the download folder is deleted after), name the result, optionally scale it so its
largest dimension is `target_size`, tag its root with custom properties (provenance, licence), and
remove everything it added if any step fails.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .references import GLB_MAGIC, outside_references, resolves_inside
from .rollback import Created

__all__ = ["GLB_MAGIC", "MODEL_SUFFIXES", "bounds", "import_model"]

MODEL_SUFFIXES = (".glb", ".gltf", ".obj", ".fbx")
"""What a model download may be imported from (a .blend only where the source is known to publish them)."""
BLEND_SUFFIX = ".blend"
SHOWN_REFERENCES = 3
"""Outside references an error names (each cut to 200 characters)."""


def import_model(path: Path, *, name: str | None = None, target_size: float | None = None,
                 tags: dict[str, Any] | None = None, folder: Path | None = None) -> dict[str, Any]:
    """Import `path`, a file of the download in `folder` (default: its own folder); returns the objects,
    the named root, the scale applied and the world bounds."""
    import bpy

    folder = folder or path.parent
    _refuse_outside(path, outside_references(path, folder))
    created = Created()
    try:
        _import_file(path)
        objects = created.new()["objects"]
        if not objects:
            raise ValueError(f"{path.name} contained no objects")
        images = created.new()["images"]
        _refuse_outside(path, [image.filepath for image in images if _loaded_from_outside(image, folder)])
        for image in images:
            if not image.packed_file and (image.filepath or image.source == "FILE"):
                image.pack()
        root = _named_root(objects, name) if name else None
        objects = created.new()["objects"]
        bpy.context.view_layer.update()
        lo, hi = bounds(objects)
        scale = 1.0
        if target_size is not None:
            largest = max(hi - lo)
            if largest <= 0:
                raise ValueError(f"{path.name} has no extent to scale")
            scale = target_size / largest
            for obj in _roots(objects):  # scaled about the world origin
                obj.location = obj.location * scale
                obj.scale = obj.scale * scale
            bpy.context.view_layer.update()
            lo, hi = bounds(objects)
        for obj in [root] if root is not None else _roots(objects):
            for key, value in (tags or {}).items():
                obj[key] = value
    except BaseException:
        created.rollback()
        raise
    info: dict[str, Any] = {"objects": sorted(o.name for o in objects), "scale": scale,
                            "world_bounding_box": {"min": list(lo), "max": list(hi)}, "dimensions": list(hi - lo),
                            "created": created.names()}
    if root is not None:
        info.update(object=root.name, type=root.type)
    return info


def _refuse_outside(path: Path, references: list[str]) -> None:
    if references:
        named = ", ".join(repr(r[:200]) for r in references[:SHOWN_REFERENCES])
        raise PermissionError(f"{path.name} refers to files outside its own download ({named}"
                              f"{', ...' if len(references) > SHOWN_REFERENCES else ''}); a hostile model could read"
                              " this machine's files that way, so nothing of it was imported")


def _loaded_from_outside(image: Any, folder: Path) -> bool:
    """Whether the importer loaded (or would load) this image from a file outside `folder`. A packed
    image whose path names no existing file got its bytes from the model itself: that is harmless."""
    import bpy

    if not image.filepath:
        return False
    path = bpy.path.abspath(image.filepath)
    if resolves_inside(path, folder):
        return False
    return image.packed_file is None or os.path.exists(path)


def _import_file(path: Path) -> None:
    import bpy

    suffix = path.suffix.lower()
    if suffix in (".glb", ".gltf"):
        bpy.ops.import_scene.gltf(filepath=str(path))
    elif suffix == ".obj":
        bpy.ops.wm.obj_import(filepath=str(path))
    elif suffix == ".fbx":
        bpy.ops.import_scene.fbx(filepath=str(path))
    elif suffix == BLEND_SUFFIX:  # its objects, appended (a source that publishes .blend files: Poly Haven)
        with bpy.data.libraries.load(str(path), link=False) as (source, target):
            target.objects = list(source.objects)
        for obj in target.objects:
            if obj is not None:
                bpy.context.scene.collection.objects.link(obj)
    else:
        raise ValueError(f"cannot import {path.name}: blendbus imports {', '.join(MODEL_SUFFIXES)}")


def _roots(objects: list[Any]) -> list[Any]:
    return [o for o in objects if o.parent is None or o.parent not in objects]


def _named_root(objects: list[Any], name: str) -> Any:
    """One object carrying `name`: the single mesh of an empty-wrapped model (the empty goes), the
    only root, or a new empty gathering several roots."""
    import bpy

    roots = _roots(objects)
    meshes = [o for o in objects if o.type == "MESH"]
    if len(roots) == 1 and roots[0].type == "EMPTY" and len(meshes) == 1 and len(objects) == 2:
        mesh, empty = meshes[0], roots[0]
        world = mesh.matrix_world.copy()
        mesh.parent = None
        mesh.matrix_world = world
        bpy.data.objects.remove(empty)
        named = mesh
    elif len(roots) == 1:
        named = roots[0]
    else:
        named = bpy.data.objects.new(name, None)
        bpy.context.scene.collection.objects.link(named)
        for root in roots:
            root.parent = named
    named.name = name
    return named


def bounds(objects: list[Any]) -> tuple[Any, Any]:
    """World-space bounding box (min, max) of the evaluated objects."""
    import bpy
    from mathutils import Vector

    depsgraph = bpy.context.evaluated_depsgraph_get()
    points = [o.evaluated_get(depsgraph).matrix_world @ Vector(c)
              for o in objects if o.type in ("MESH", "CURVE", "SURFACE", "META", "FONT")
              for c in o.evaluated_get(depsgraph).bound_box]
    if not points:
        points = [o.matrix_world.translation for o in objects]
    lo = Vector([min(p[i] for p in points) for i in range(3)])
    hi = Vector([max(p[i] for p in points) for i in range(3)])
    return lo, hi
