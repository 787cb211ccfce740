"""Importing a downloaded or generated model into the scene, for every asset plugin.

One way to do it: import by file type, pack the images (the download folder is deleted after),
name the result, optionally scale it so its largest dimension is `target_size`, tag its root with
custom properties (provenance, licence), and remove everything it added if any step fails.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .rollback import Created

MODEL_SUFFIXES = (".glb", ".gltf", ".obj", ".fbx")
GLB_MAGIC = b"glTF"
"""The first four bytes of every binary glTF file."""


def import_model(path: Path, *, name: str | None = None, target_size: float | None = None,
                 tags: dict[str, Any] | None = None) -> dict[str, Any]:
    """Import `path`; returns the objects, the named root, the scale applied and the world bounds."""
    import bpy

    created = Created()
    try:
        _import_file(path)
        objects = created.new()["objects"]
        if not objects:
            raise ValueError(f"{path.name} contained no objects")
        for image in created.new()["images"]:
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


def _import_file(path: Path) -> None:
    import bpy

    suffix = path.suffix.lower()
    if suffix in (".glb", ".gltf"):
        bpy.ops.import_scene.gltf(filepath=str(path))
    elif suffix == ".obj":
        bpy.ops.wm.obj_import(filepath=str(path))
    elif suffix == ".fbx":
        bpy.ops.import_scene.fbx(filepath=str(path))
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
