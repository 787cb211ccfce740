"""Poly Haven handlers: run inside Blender (stdlib + bpy + the blendbus addon's HTTP helper).

Downloads run on a worker thread (`yield job.background(...)`) so Blender stays responsive; only
building the world, material or imported objects happens on the main thread. Whatever a failed
call created is removed again: no half-built world or material is left behind.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

from blendbus_addon.http import HTTPError, download, inside, request_json, url
from blendbus_addon.imports import import_model
from blendbus_addon.rollback import Created

from . import SERVICE

ID_PROP = "blendbus_polyhaven_id"
"""Custom property marking what this plugin created (worlds, materials), with the asset id."""
FORMATS = {"hdris": ("hdr", "exr"), "textures": ("jpg", "png", "exr"), "models": ("gltf", "fbx", "blend")}


def _api(job: Any) -> str:
    return str(job.setting(SERVICE.key("api_url")))


def _timeout(job: Any) -> float:
    return float(job.setting(SERVICE.key("timeout_s")))


def get_polyhaven_status(job: Any) -> dict[str, Any]:
    return SERVICE.status(job, api_url=_api(job))


def get_polyhaven_categories(asset_type: str, job: Any) -> dict[str, Any]:
    counts = request_json(url(_api(job), f"categories/{asset_type}"), timeout=_timeout(job))
    return {"asset_type": asset_type, "categories": dict(sorted(counts.items(), key=lambda kv: -kv[1]))}


_TYPE_CODES = {0: "hdris", 1: "textures", 2: "models"}


def search_polyhaven_assets(job: Any, asset_type: str = "all", categories: str | None = None,
                            query: str | None = None, limit: int = 20, offset: int = 0) -> dict[str, Any]:
    assets = request_json(url(_api(job), "assets", type=asset_type, categories=categories), timeout=_timeout(job))
    words = [w.lower() for w in (query or "").split() if w]
    found = []
    for asset_id, meta in assets.items():
        text = " ".join([asset_id, meta.get("name", ""), *meta.get("tags", []), *meta.get("categories", [])]).lower()
        if all(w in text for w in words):
            found.append((asset_id, meta))
    found.sort(key=lambda item: -int(item[1].get("download_count", 0)))
    page = found[offset:offset + limit]
    return {
        "total": len(found),
        "offset": offset,
        "next_offset": offset + limit if offset + limit < len(found) else None,
        "assets": [{"id": asset_id, "name": meta.get("name", asset_id),
                    "type": _TYPE_CODES.get(meta.get("type"), meta.get("type")),
                    "categories": meta.get("categories", []), "tags": meta.get("tags", []),
                    "download_count": meta.get("download_count", 0),
                    "max_resolution": meta.get("max_resolution")} for asset_id, meta in page],
    }


# ---- choosing files ----------------------------------------------------------------------------
def _pick(tree: dict[str, Any], key: str, resolution: str, fmt: str | None, asset_id: str) -> tuple[str, dict[str, Any]]:
    """The file entry for key/resolution/format, or a ValueError listing what the asset has."""
    by_res = tree.get(key) or {}
    if resolution not in by_res:
        raise ValueError(f"{asset_id} has no {resolution} {key}; available resolutions:"
                         f" {', '.join(sorted(by_res, key=_res_order)) or 'none'}")
    formats = by_res[resolution]
    if fmt is None:
        fmt = next((f for f in FORMATS_ORDER if f in formats), next(iter(formats), None))
    if fmt not in formats:
        raise ValueError(f"{asset_id} has no {fmt} file at {resolution}; available formats: {', '.join(formats)}")
    return fmt, formats[fmt]


FORMATS_ORDER = ("hdr", "exr", "png", "jpg", "gltf", "fbx", "blend")


def _res_order(res: str) -> int:
    match = re.match(r"(\d+)k", res)
    return int(match.group(1)) if match else 0


MAP_ALIASES = {
    "diffuse": "color", "diff": "color", "color": "color", "col": "color", "albedo": "color", "basecolor": "color",
    "rough": "roughness", "roughness": "roughness",
    "metal": "metallic", "metallic": "metallic", "metalness": "metallic",
    "ao": "ao", "ambientocclusion": "ao",
    "nor_gl": "normal_gl", "normal_gl": "normal_gl", "nor_dx": "normal_dx", "normal_dx": "normal_dx",
    "disp": "displacement", "displacement": "displacement", "height": "displacement",
    "arm": "arm",
}


def _texture_maps(tree: dict[str, Any], resolution: str, fmt: str | None, asset_id: str) -> dict[str, tuple[str, dict]]:
    """Map role -> (file name, entry), matching Poly Haven's mixed-case keys case-insensitively."""
    maps: dict[str, tuple[str, dict]] = {}
    for key in tree:
        role = MAP_ALIASES.get(key.lower().replace(" ", ""))
        if role is None or role in maps:
            continue
        chosen_fmt, entry = _pick(tree, key, resolution, fmt if fmt in (tree[key].get(resolution) or {}) else None,
                                  asset_id)
        maps[role] = (f"{asset_id}_{key}_{resolution}.{chosen_fmt}", entry)
    if "normal_gl" in maps:
        maps.pop("normal_dx", None)  # OpenGL normals are Blender's convention; DirectX only as a fallback
    if not maps:
        raise ValueError(f"{asset_id} has no texture maps at {resolution}")
    return maps


def _fetch(job: Any, asset_id: str, asset_type: str, resolution: str, file_format: str | None) -> dict[str, Any]:
    """Background part: read the file tree, then download and verify every file into a temp folder."""
    timeout = _timeout(job)
    try:
        tree = request_json(url(_api(job), f"files/{asset_id}"), timeout=timeout)
    except HTTPError as exc:
        if exc.status == 404:
            raise LookupError(f"Poly Haven has no asset {asset_id!r}; find ids with"
                              " blender_search_polyhaven_assets") from None
        raise
    if file_format is not None and file_format not in FORMATS[asset_type]:
        raise ValueError(f"{asset_type} come as {', '.join(FORMATS[asset_type])}, not {file_format}")
    plan: dict[str, tuple[str, dict]] = {}
    if asset_type == "hdris":
        fmt, entry = _pick(tree, "hdri", resolution, file_format, asset_id)
        plan["hdri"] = (f"{asset_id}_{resolution}.{fmt}", entry)
    elif asset_type == "textures":
        plan = _texture_maps(tree, resolution, file_format, asset_id)
    else:  # models: files[format][resolution][format]
        available = [f for f in FORMATS["models"] if f in tree]
        if not available or (file_format and file_format not in available):
            raise ValueError(f"{asset_id} has no {file_format or 'model'} files; available formats:"
                             f" {', '.join(available) or 'none'}")
        fmt, entry = _pick(tree, file_format or available[0], resolution, file_format or available[0], asset_id)
        plan["model"] = (f"{asset_id}_{resolution}.{fmt}", entry)
    folder = Path(tempfile.mkdtemp(prefix=f"blendbus-polyhaven-{asset_id}-"))
    try:
        files = [(inside(folder, name), entry) for name, entry in plan.values()]
        for name, entry in plan.values():
            base = inside(folder, name).parent
            for rel, inc in (entry.get("include") or {}).items():
                files.append((inside(base, rel), inc))  # refuses ../ and absolute include paths
        total = sum(int(e.get("size") or 0) for _, e in files) or None
        done = 0
        for path, entry in files:
            def report(got: int, _size: int | None, before: int = done) -> None:
                if total:
                    job.progress(min(1.0, (before + got) / total), f"downloading {path.name}")

            download(entry["url"], path, md5=entry.get("md5"), size=entry.get("size"), timeout=timeout,
                     progress=report)
            done += int(entry.get("size") or 0)
        return {"folder": str(folder), "files": {role: str(inside(folder, name)) for role, (name, _) in plan.items()}}
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise


def download_polyhaven_asset(asset_id: str, asset_type: str, job: Any, resolution: str = "1k",
                             file_format: str | None = None) -> Any:
    fetched = yield job.background(_fetch, job, asset_id, asset_type, resolution, file_format)
    folder = Path(fetched["folder"])
    try:
        return _build(asset_type, asset_id, resolution, fetched["files"], folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# ---- building in Blender (main thread) ---------------------------------------------------------
def _build(asset_type: str, asset_id: str, resolution: str, files: dict[str, str], folder: Path) -> dict[str, Any]:
    created = Created()
    try:
        if asset_type == "hdris":
            result = _build_world(asset_id, files["hdri"])
        elif asset_type == "textures":
            result = _build_material(asset_id, files)
        else:
            result = import_model(Path(files["model"]), tags={ID_PROP: asset_id}, folder=folder)
    except BaseException:
        created.rollback()
        raise
    result.update(asset_id=asset_id, asset_type=asset_type, resolution=resolution,
                  created=created.names())
    return result


def _load_image(path: str, non_color: bool = False) -> Any:
    import bpy

    image = bpy.data.images.load(path, check_existing=False)
    image.name = Path(path).stem
    if non_color:
        image.colorspace_settings.name = "Non-Color"
    image.pack()  # the .blend keeps it after the temp file is gone
    return image


def _build_world(asset_id: str, path: str) -> dict[str, Any]:
    import bpy

    scene = bpy.context.scene
    previous = scene.world
    world = bpy.data.worlds.new(f"PolyHaven {asset_id}")
    world[ID_PROP] = asset_id
    world.use_nodes = True
    nodes, links = world.node_tree.nodes, world.node_tree.links
    nodes.clear()
    coords = nodes.new("ShaderNodeTexCoord")
    mapping = nodes.new("ShaderNodeMapping")
    env = nodes.new("ShaderNodeTexEnvironment")
    env.image = _load_image(path)
    background = nodes.new("ShaderNodeBackground")
    output = nodes.new("ShaderNodeOutputWorld")
    links.new(coords.outputs["Generated"], mapping.inputs["Vector"])
    links.new(mapping.outputs["Vector"], env.inputs["Vector"])
    links.new(env.outputs["Color"], background.inputs["Color"])
    links.new(background.outputs["Background"], output.inputs["Surface"])
    for x, node in enumerate((coords, mapping, env, background, output)):
        node.location = (x * 250 - 500, 0)
    scene.world = world
    replaced = None
    if previous is not None and ID_PROP in previous and previous.users == 0:
        replaced = previous.name  # an HDRI world of ours nothing else uses: remove it and its image
        images = [n.image for n in previous.node_tree.nodes if getattr(n, "image", None)] if previous.node_tree else []
        bpy.data.worlds.remove(previous)
        for image in images:
            if image.users == 0:
                bpy.data.images.remove(image)
    return {"world": world.name, "image": env.image.name, "replaced_world": replaced}


def _build_material(asset_id: str, files: dict[str, str]) -> dict[str, Any]:
    import bpy

    mat = bpy.data.materials.new(f"PolyHaven {asset_id}")
    mat[ID_PROP] = asset_id
    mat.use_nodes = True
    nodes, links = mat.node_tree.nodes, mat.node_tree.links
    bsdf = next(n for n in nodes if n.type == "BSDF_PRINCIPLED")
    output = next(n for n in nodes if n.type == "OUTPUT_MATERIAL")
    coords = nodes.new("ShaderNodeTexCoord")
    mapping = nodes.new("ShaderNodeMapping")
    links.new(coords.outputs["UV"], mapping.inputs["Vector"])
    wired: dict[str, str] = {}

    def image_node(role: str, non_color: bool) -> Any:
        node = nodes.new("ShaderNodeTexImage")
        node.label = role
        node.image = _load_image(files[role], non_color)
        links.new(mapping.outputs["Vector"], node.inputs["Vector"])
        return node

    color_out = None
    if "color" in files:
        color_out = image_node("color", False).outputs["Color"]
    ao_out = None
    if "arm" in files:
        split = nodes.new("ShaderNodeSeparateColor")  # SeparateRGB is gone since Blender 4.0
        links.new(image_node("arm", True).outputs["Color"], split.inputs["Color"])
        ao_out = split.outputs["Red"]
        if "roughness" not in files:
            links.new(split.outputs["Green"], bsdf.inputs["Roughness"])
            wired["roughness"] = "arm.G"
        if "metallic" not in files:
            links.new(split.outputs["Blue"], bsdf.inputs["Metallic"])
            wired["metallic"] = "arm.B"
    if "ao" in files:
        ao_out = image_node("ao", True).outputs["Color"]
    if color_out is not None and ao_out is not None:
        mix = nodes.new("ShaderNodeMix")
        mix.data_type, mix.blend_type = "RGBA", "MULTIPLY"
        mix.inputs["Factor"].default_value = 1.0
        links.new(color_out, mix.inputs["A"])
        links.new(ao_out, mix.inputs["B"])
        color_out = mix.outputs["Result"]
        wired["ao"] = "multiplied into base color"
    if color_out is not None:
        links.new(color_out, bsdf.inputs["Base Color"])
        wired["color"] = "Base Color"
    for role, socket in (("roughness", "Roughness"), ("metallic", "Metallic")):
        if role in files:
            links.new(image_node(role, True).outputs["Color"], bsdf.inputs[socket])
            wired[role] = socket
    normal_role = "normal_gl" if "normal_gl" in files else ("normal_dx" if "normal_dx" in files else None)
    if normal_role:
        normal_color = image_node(normal_role, True).outputs["Color"]
        if normal_role == "normal_dx":  # DirectX normals: flip green to Blender's OpenGL convention
            split = nodes.new("ShaderNodeSeparateColor")
            invert = nodes.new("ShaderNodeMath")
            invert.operation = "SUBTRACT"
            invert.inputs[0].default_value = 1.0
            join = nodes.new("ShaderNodeCombineColor")
            links.new(normal_color, split.inputs["Color"])
            links.new(split.outputs["Green"], invert.inputs[1])
            links.new(split.outputs["Red"], join.inputs["Red"])
            links.new(invert.outputs["Value"], join.inputs["Green"])
            links.new(split.outputs["Blue"], join.inputs["Blue"])
            normal_color = join.outputs["Color"]
        normal_map = nodes.new("ShaderNodeNormalMap")
        links.new(normal_color, normal_map.inputs["Color"])
        links.new(normal_map.outputs["Normal"], bsdf.inputs["Normal"])
        wired[normal_role] = "Normal (Normal Map node)"
    if "displacement" in files:
        disp = nodes.new("ShaderNodeDisplacement")
        links.new(image_node("displacement", True).outputs["Color"], disp.inputs["Height"])
        links.new(disp.outputs["Displacement"], output.inputs["Displacement"])
        wired["displacement"] = "Material Output Displacement"
    return {"material": mat.name, "maps": wired}


def set_texture(object_name: str, texture_id: str) -> dict[str, Any]:
    import bpy

    obj = bpy.data.objects.get(object_name)
    if obj is None:
        raise LookupError(f"no object named {object_name!r}")
    if obj.type != "MESH":
        raise ValueError(f"{object_name!r} is a {obj.type}, not a mesh: textures go on meshes")
    mat = next((m for m in bpy.data.materials if m.get(ID_PROP) == texture_id), None)
    if mat is None:
        raise LookupError(f"texture {texture_id!r} is not downloaded yet: call blender_download_polyhaven_asset"
                          f"(asset_id={texture_id!r}, asset_type='textures') first")
    if obj.data.materials:
        obj.data.materials[0] = mat
    else:
        obj.data.materials.append(mat)
    return {"object": obj.name, "material": mat.name}
