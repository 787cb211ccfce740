"""Scene handlers: run inside Blender. Standard library and bpy/mathutils only.

Every value returned is JSON-safe: vectors become lists, matrices lists of lists, enums strings.
"""

from __future__ import annotations

import base64
import difflib
import math
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import bpy
from blendbus.protocol import IMAGES_KEY
from blendbus_addon.paths import read_regular
from mathutils import Vector

MAX_IMAGE_BYTES = 64 * 1024 * 1024
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
MAX_SCENE_OBJECTS = 5000
"""get_scene_info lists at most this many objects, then points the caller to paging."""


def _vec(v: Any) -> list[float]:
    return [_num(x) for x in v]


def _num(x: float) -> float | str:
    return x if math.isfinite(x) else ("NaN" if math.isnan(x) else ("Infinity" if x > 0 else "-Infinity"))


def _scene(name: str | None) -> Any:
    if not name:
        return bpy.context.scene
    scene = bpy.data.scenes.get(name)
    if scene is None:
        raise LookupError(f"no scene named {name!r}; scenes: {', '.join(bpy.data.scenes.keys())}")
    return scene


def _object_summary(obj: Any) -> dict[str, Any]:
    return {
        "name": obj.name,
        "type": obj.type,
        "location": _vec(obj.location),
        "parent": obj.parent.name if obj.parent else None,
        "collections": [c.name for c in obj.users_collection],
    }


def _collection_tree(coll: Any) -> dict[str, Any]:
    return {"name": coll.name, "objects": len(coll.objects), "children": [_collection_tree(c) for c in coll.children]}


def get_scene_info(scene: str | None = None) -> dict[str, Any]:
    sc = _scene(scene)
    objects = list(sc.objects)
    shown = objects[:MAX_SCENE_OBJECTS]
    info: dict[str, Any] = {
        "name": sc.name,
        "frame_start": sc.frame_start,
        "frame_end": sc.frame_end,
        "frame_current": sc.frame_current,
        "fps": sc.render.fps,
        "render_engine": sc.render.engine,
        "resolution": [sc.render.resolution_x, sc.render.resolution_y, sc.render.resolution_percentage],
        "units": {
            "system": sc.unit_settings.system,
            "length_unit": sc.unit_settings.length_unit,
            "scale_length": sc.unit_settings.scale_length,
        },
        "active_camera": sc.camera.name if sc.camera else None,
        "world": sc.world.name if sc.world else None,
        "collections": _collection_tree(sc.collection),
        "object_count": len(objects),
        "counts_by_type": dict(Counter(o.type for o in objects)),
        "objects": [_object_summary(o) for o in shown],
        "truncated": len(objects) > len(shown),
    }
    if info["truncated"]:
        info["hint"] = (f"{len(objects)} objects exceed the {MAX_SCENE_OBJECTS} listed here; page through all"
                        " of them with blender_list_objects(offset, limit) or"
                        " blender_browse_data(path='objects', offset, limit)")
    return info


def list_objects(offset: int = 0, limit: int = 100) -> dict[str, Any]:
    objects = list(bpy.context.scene.objects)
    page = objects[offset:offset + limit]
    more = offset + limit < len(objects)
    return {"total": len(objects), "offset": offset, "objects": [_object_summary(o) for o in page],
            "next_offset": offset + limit if more else None}


def _find_object(name: str) -> Any:
    obj = bpy.data.objects.get(name)
    if obj is None:
        close = difflib.get_close_matches(name, bpy.data.objects.keys(), n=5, cutoff=0.5)
        hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise LookupError(f"no object named {name!r}{hint}")
    return obj


def _world_bbox(obj: Any) -> dict[str, list[float]]:
    """The box of what the viewport shows (modifiers applied). Asked of the depsgraph explicitly:
    `Object.bound_box` alone gives evaluated bounds in 4.2 but may give the original mesh's in 5.0."""
    evaluated = obj.evaluated_get(bpy.context.evaluated_depsgraph_get())
    corners = [evaluated.matrix_world @ Vector(c) for c in evaluated.bound_box]
    return {"min": _vec([min(c[i] for c in corners) for i in range(3)]),
            "max": _vec([max(c[i] for c in corners) for i in range(3)])}


def _custom_properties(idblock: Any) -> dict[str, Any]:
    out = {}
    for key in idblock.keys():
        if key.startswith("_"):
            continue
        value = idblock[key]
        out[key] = value.to_dict() if hasattr(value, "to_dict") else (
            value.to_list() if hasattr(value, "to_list") else value)
    return out


def get_object_info(name: str) -> dict[str, Any]:
    obj = _find_object(name)
    info: dict[str, Any] = {
        **_object_summary(obj),
        "rotation_euler": _vec(obj.rotation_euler),
        "rotation_mode": obj.rotation_mode,
        "rotation_quaternion": _vec(obj.rotation_quaternion),
        "scale": _vec(obj.scale),
        "dimensions": _vec(obj.dimensions),
        "world_bounding_box": _world_bbox(obj),
        "matrix_world": [_vec(row) for row in obj.matrix_world],
        "visible": obj.visible_get() if obj.name in bpy.context.view_layer.objects else False,
        "hide_viewport": obj.hide_viewport,
        "hide_render": obj.hide_render,
        "children": [c.name for c in obj.children],
        "modifiers": [{"name": m.name, "type": m.type, "show_viewport": m.show_viewport,
                       "show_render": m.show_render} for m in obj.modifiers],
        "constraints": [{"name": c.name, "type": c.type, "enabled": c.enabled} for c in obj.constraints],
        "custom_properties": _custom_properties(obj),
        "materials": [
            {"slot": i, "name": slot.material.name if slot.material else None,
             "node_count": len(slot.material.node_tree.nodes) if slot.material and slot.material.node_tree else 0}
            for i, slot in enumerate(obj.material_slots)
        ],
    }
    data = obj.data
    if obj.type == "MESH":
        info["mesh"] = {"name": data.name, "vertices": len(data.vertices), "edges": len(data.edges),
                        "faces": len(data.polygons), "triangles": sum(len(p.vertices) - 2 for p in data.polygons)}
    elif obj.type == "LIGHT":
        info["light"] = {"name": data.name, "type": data.type, "energy": data.energy, "color": _vec(data.color),
                         "shadow_soft_size": data.shadow_soft_size}
        if data.type == "SPOT":
            info["light"].update(spot_size=data.spot_size, spot_blend=data.spot_blend)
    elif obj.type == "CAMERA":
        info["camera"] = {"name": data.name, "type": data.type, "lens": data.lens, "sensor_width": data.sensor_width,
                          "clip_start": data.clip_start, "clip_end": data.clip_end, "ortho_scale": data.ortho_scale,
                          "is_active": bpy.context.scene.camera == obj}
    return info


# ---- browse_data ------------------------------------------------------------------------------
def _data_collections() -> list[str]:
    return sorted(p.identifier for p in bpy.data.bl_rna.properties if p.type == "COLLECTION")


MAX_ARRAY_ITEMS = 256
"""An array property (an image's pixels, a mesh's vertices) shows this many items, and its length."""


def _render(value: Any, prop: Any) -> Any:
    kind = prop.type
    if isinstance(value, bytes | bytearray) or getattr(prop, "subtype", "") == "BYTE_STRING":
        # Raw bytes (a packed file's data) are never handed out, only their size: a scene may hold
        # files its owner never meant to share.
        return {"bytes": len(value or b"")}
    if kind == "POINTER":
        return None if value is None else {"pointer": value.bl_rna.identifier, "name": getattr(value, "name", None)}
    if kind == "COLLECTION":
        return {"collection": prop.fixed_type.identifier, "count": len(value)}
    if kind == "ENUM" and getattr(prop, "is_enum_flag", False):
        return sorted(value)
    if getattr(prop, "is_array", False) or (hasattr(value, "__len__") and kind in ("FLOAT", "INT", "BOOLEAN")):
        try:
            length = len(value)
            flat = [value[i] for i in range(min(length, MAX_ARRAY_ITEMS))]
        except TypeError:
            return value
        shown = [_vec(v) if hasattr(v, "__len__") else (_num(v) if isinstance(v, float) else v) for v in flat]
        return shown if length <= MAX_ARRAY_ITEMS else {"length": length, "first": shown}
    if isinstance(value, float):
        return _num(value)
    return value


def _resolve(path: str) -> tuple[Any, str]:
    parts = [p for p in path.strip("/").split("/") if p]
    if not parts:
        return bpy.data, "BlendData"
    if parts[0] not in _data_collections():
        raise ValueError(f"path must start with a bpy.data collection ({', '.join(_data_collections())}),"
                         f" not {parts[0]!r}")
    current: Any = getattr(bpy.data, parts[0])
    for part in parts[1:]:
        if part.startswith("_"):
            raise ValueError(f"path segment {part!r} is not a data property")
        if isinstance(current, bpy.types.bpy_prop_collection):
            item = current.get(part)
            if item is None and part.isdigit() and int(part) < len(current):
                item = current[int(part)]
            if item is None:
                raise LookupError(f"no item {part!r} in {path!r}")
            current = item
        else:
            prop = current.bl_rna.properties.get(part)
            if prop is None or prop.type not in ("POINTER", "COLLECTION"):
                raise ValueError(f"{part!r} is not a pointer or collection of {current.bl_rna.identifier}")
            current = getattr(current, part)
            if current is None:
                raise LookupError(f"{path!r}: {part} is empty")
    rna = current.bl_rna.identifier if hasattr(current, "bl_rna") else type(current).__name__
    return current, rna


def browse_data(path: str = "", offset: int = 0, limit: int = 100) -> dict[str, Any]:
    target, rna = _resolve(path)
    if target is bpy.data:
        rows = [{"name": n, "count": len(getattr(bpy.data, n))} for n in _data_collections()]
    elif isinstance(target, bpy.types.bpy_prop_collection):
        rows = [{"name": getattr(item, "name", str(i)), "index": i,
                 "rna_type": item.bl_rna.identifier} for i, item in enumerate(target)]
    else:
        rows = []
        for prop in target.bl_rna.properties:
            if prop.identifier == "rna_type":
                continue
            try:
                value = _render(getattr(target, prop.identifier), prop)
            except Exception as exc:  # noqa: BLE001 - some RNA getters refuse in some contexts
                value = {"unreadable": str(exc)}
            rows.append({"name": prop.identifier, "type": prop.type, "value": value})
    page = rows[offset:offset + limit]
    more = offset + limit < len(rows)
    return {"path": path.strip("/"), "rna_type": rna, "total": len(rows), "offset": offset, "items": page,
            "next_offset": offset + limit if more else None}


# ---- screenshot -------------------------------------------------------------------------------
def camera_named(name: str) -> Any:
    """The camera object called `name`; a LookupError naming the cameras there are otherwise."""
    cam = bpy.data.objects.get(name)
    if cam is None or cam.type != "CAMERA":
        cameras = [o.name for o in bpy.data.objects if o.type == "CAMERA"]
        raise LookupError(f"no camera {name!r}; cameras: {', '.join(cameras) or 'none'}")
    return cam


def _frame_camera(scene: Any) -> Any:
    """A temporary camera looking at everything visible, for scenes without one."""
    points = [o.matrix_world @ Vector(c) for o in scene.objects if o.type not in ("CAMERA", "LIGHT")
              for c in o.bound_box] or [Vector((0, 0, 0))]
    lo = Vector([min(p[i] for p in points) for i in range(3)])
    hi = Vector([max(p[i] for p in points) for i in range(3)])
    center, radius = (lo + hi) / 2, max((hi - lo).length / 2, 0.5)
    data = bpy.data.cameras.new("blendbus_tmp_camera")
    cam = bpy.data.objects.new("blendbus_tmp_camera", data)
    scene.collection.objects.link(cam)
    direction = Vector((1.0, -1.0, 0.7)).normalized()
    distance = radius / math.tan(data.angle / 2) * 1.1
    cam.location = center + direction * distance
    cam.rotation_euler = (-direction).to_track_quat("-Z", "Y").to_euler()
    data.clip_end = max(data.clip_end, distance * 4)
    return cam


COLOUR_INPUTS = ("Base Color", "Color")
"""The colour input of the shader nodes an LLM sets: Principled BSDF, Diffuse, Emission, ..."""
NODE_COLOURS = "material nodes' Base Color (image textures where a material has one)"


def _node_colour(material: Any) -> tuple[float, ...] | None:
    """The colour a material's surface shader is set to, when it is a plain colour."""
    tree = material.node_tree if material.use_nodes else None
    output = tree and next((n for n in tree.nodes if n.type == "OUTPUT_MATERIAL" and n.is_active_output), None)
    surface = output.inputs["Surface"] if output else None
    if surface is None or not surface.is_linked:
        return None
    shader = surface.links[0].from_node
    colour = next((shader.inputs[name] for name in COLOUR_INPUTS if name in shader.inputs), None)
    if colour is None:
        return None
    if not colour.is_linked:
        return tuple(colour.default_value)
    source = colour.links[0].from_node
    return tuple(source.outputs[0].default_value) if source.type == "RGB" else None


@contextmanager
def _node_colours(scene: Any) -> Iterator[None]:
    """Workbench shows each material's viewport colour, but an LLM sets the colour on the material's
    nodes: for this render, show the node colour (and image textures), then put everything back."""
    shading = scene.display.shading
    saved = [(m, tuple(m.diffuse_color)) for m in bpy.data.materials]
    kept = shading.color_type
    try:
        for material, _ in saved:
            colour = _node_colour(material)
            if colour is not None:
                material.diffuse_color = colour
        shading.color_type = "TEXTURE"  # a material's image texture where it has one, its colour elsewhere
        yield
    finally:
        shading.color_type = kept
        for material, colour in saved:
            material.diffuse_color = colour


@contextmanager
def _viewing_camera(scene: Any) -> Iterator[Any]:
    """The scene's camera, or for this block a temporary one framing the scene (the same framing
    each time for the same scene, so a pick sees what the screenshot showed)."""
    if scene.camera is not None:
        yield scene.camera
        return
    cam = scene.camera = _frame_camera(scene)
    try:
        yield cam
    finally:
        scene.camera = None
        data = cam.data
        bpy.data.objects.remove(cam)
        bpy.data.cameras.remove(data)


def _render_headless(filepath: str, max_size: int) -> tuple[int, int]:
    scene = bpy.context.scene
    r = scene.render
    saved = (r.engine, r.resolution_x, r.resolution_y, r.resolution_percentage, r.filepath,
             r.image_settings.file_format)
    try:
        aspect = r.resolution_x / max(r.resolution_y, 1)
        width, height = (max_size, max(1, round(max_size / aspect))) if aspect >= 1 else (
            max(1, round(max_size * aspect)), max_size)
        r.engine = "BLENDER_WORKBENCH"
        r.resolution_x, r.resolution_y, r.resolution_percentage = width, height, 100
        r.image_settings.file_format = "PNG"
        r.filepath = filepath
        with _viewing_camera(scene), _node_colours(scene):
            bpy.ops.render.render(write_still=True)
        return width, height
    finally:
        (r.engine, r.resolution_x, r.resolution_y, r.resolution_percentage, r.filepath,
         r.image_settings.file_format) = saved


def _largest_view3d() -> tuple[Any, Any, Any]:
    """(window, region, space) of the largest 3D viewport open in the GUI."""
    areas = [(w, a) for w in bpy.context.window_manager.windows for a in w.screen.areas if a.type == "VIEW_3D"]
    if not areas:
        raise RuntimeError("no 3D viewport is open")
    window, area = max(areas, key=lambda wa: wa[1].width * wa[1].height)
    return window, next(r for r in area.regions if r.type == "WINDOW"), area.spaces.active


def _viewport_offscreen(filepath: str, max_size: int) -> tuple[int, int]:
    """Draw the largest 3D viewport offscreen (so a background window is not black) and save it."""
    import gpu

    window, region, space = _largest_view3d()
    scale = min(1.0, max_size / max(region.width, region.height))
    width, height = max(1, int(region.width * scale)), max(1, int(region.height * scale))
    offscreen = gpu.types.GPUOffScreen(width, height)
    try:
        offscreen.draw_view3d(bpy.context.scene, window.view_layer, space, region,
                              space.region_3d.view_matrix, space.region_3d.window_matrix)
        with offscreen.bind():
            buffer = gpu.state.active_framebuffer_get().read_color(0, 0, width, height, 4, 0, "FLOAT")
    finally:
        offscreen.free()
    image = bpy.data.images.new("blendbus_viewport", width, height, alpha=True)
    try:
        buffer.dimensions = width * height * 4
        image.pixels.foreach_set(buffer)
        image.filepath_raw, image.file_format = filepath, "PNG"
        image.save()
    finally:
        bpy.data.images.remove(image)
    return width, height


def get_viewport_screenshot(job: Any, filepath: str | None = None, max_size: int = 800) -> dict[str, Any]:
    outputs = job.outputs
    final = outputs.output(filepath, suffix=".png", stem="view")
    with outputs.writing(final) as tmp:
        if bpy.app.background:
            width, height = _render_headless(str(tmp), max_size)
            source = "workbench_render"
        else:
            width, height = _viewport_offscreen(str(tmp), max_size)
            source = "viewport"
        png = read_regular(tmp, MAX_IMAGE_BYTES)
    if not png.startswith(PNG_MAGIC):
        raise RuntimeError("Blender did not write a PNG image; see its console for the reason")
    # The image travels inside the result, so it reaches the LLM even when the peer is remote.
    camera = bpy.context.scene.camera
    return {"filepath": str(final), "width": width, "height": height, "source": source,
            "view": "viewport" if source == "viewport" else "camera",
            "camera": camera.name if camera is not None and source != "viewport" else None,
            "colours": NODE_COLOURS if source == "workbench_render" else "the viewport's own shading",
            IMAGES_KEY: [{"data": base64.b64encode(png).decode("ascii"), "mime_type": "image/png"}]}


# ---- pick -------------------------------------------------------------------------------------
@contextmanager
def _aspect(scene: Any, aspect: float | None) -> Iterator[None]:
    """For this block, the scene's frame has the picture's aspect (a render may have had its own)."""
    if aspect is None:
        yield
        return
    r = scene.render
    saved = (r.resolution_x, r.resolution_y, r.pixel_aspect_x, r.pixel_aspect_y)
    r.resolution_x, r.resolution_y = max(4, round(1000 * aspect)), 1000
    r.pixel_aspect_x = r.pixel_aspect_y = 1.0
    try:
        yield
    finally:
        r.resolution_x, r.resolution_y, r.pixel_aspect_x, r.pixel_aspect_y = saved


def _camera_ray(scene: Any, cam: Any, x: float, y: float) -> tuple[Vector, Vector]:
    """The ray through the point (x, y) of the camera's picture, as fractions from its top left."""
    frame = cam.data.view_frame(scene=scene)
    left, right = min(v.x for v in frame), max(v.x for v in frame)
    bottom, top = min(v.y for v in frame), max(v.y for v in frame)
    local = Vector((left + (right - left) * x, top - (top - bottom) * y, frame[0].z))
    world = cam.matrix_world.normalized()
    if cam.data.type == "ORTHO":
        return world @ Vector((local.x, local.y, 0.0)), world.to_3x3() @ Vector((0.0, 0.0, -1.0))
    origin = world.translation.copy()
    return origin, (world @ local) - origin


def _viewport_ray(x: float, y: float) -> tuple[Vector, Vector]:
    from bpy_extras import view3d_utils

    _, region, space = _largest_view3d()
    point = (x * region.width, (1.0 - y) * region.height)
    return (view3d_utils.region_2d_to_origin_3d(region, space.region_3d, point),
            view3d_utils.region_2d_to_vector_3d(region, space.region_3d, point))


def pick_object(x: float, y: float, view: str | None = None, camera: str | None = None, aspect: float | None = None,
                select: bool = True) -> dict[str, Any]:
    """The object under a point of a picture of the scene (a screenshot or a render), made the
    selection and the active object."""
    scene = bpy.context.scene
    view = view or ("camera" if bpy.app.background else "viewport")
    if view == "viewport":
        origin, direction = _viewport_ray(x, y)
    elif camera is not None:
        cam = camera_named(camera)
        with _aspect(scene, aspect):
            origin, direction = _camera_ray(scene, cam, x, y)
    else:
        with _aspect(scene, aspect), _viewing_camera(scene) as cam:
            origin, direction = _camera_ray(scene, cam, x, y)
    hit, location, normal, _, obj, _ = scene.ray_cast(bpy.context.evaluated_depsgraph_get(), origin, direction)
    layer = bpy.context.view_layer
    if not hit:
        return {"object": None, "view": view, "x": x, "y": y, "selected": [o.name for o in layer.objects if o.select_get()]}
    obj = obj.original
    if select:
        for other in layer.objects:
            if other.select_get():
                other.select_set(False)
        obj.select_set(True)
        layer.objects.active = obj
    return {"object": obj.name, "type": obj.type, "view": view, "x": x, "y": y, "hit": _vec(location),
            "normal": _vec(normal), "distance": _num((location - origin).length), "location": _vec(obj.location),
            "dimensions": _vec(obj.dimensions), "materials": [s.material.name for s in obj.material_slots if s.material],
            "parent": obj.parent.name if obj.parent else None,
            "selected": [o.name for o in layer.objects if o.select_get()]}
