"""Poly Haven downloads into real Blender, against a loopback fake of the API serving real files.

The files are made with bpy in the test: a Radiance .hdr, PNG maps under Poly Haven's mixed-case
keys, and a glTF whose .bin is an `include` next to it. Faults come from the fake: 404, 500, a
wrong md5, a cut-off body, a slow answer, an include that escapes the folder.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import pytest

from blendbus import protocol as p
from blendbus.testing.blender import run_in_blender
from blendbus.testing.fakehttp import Response, fake_api

pytestmark = pytest.mark.anyio

MAKE_ASSETS = r"""
import sys, bpy
out = sys.argv[1]
def image(name, w, h, fmt, color, float_buffer=False):
    img = bpy.data.images.new(name, w, h, float_buffer=float_buffer)
    img.pixels = list(color) * (w * h)
    img.filepath_raw = f"{out}/{name}"
    img.file_format = fmt
    img.save()
image("sky.hdr", 16, 8, "HDR", (2.0, 1.5, 1.0, 1.0), float_buffer=True)
for key, color in [("Diffuse", (0.8, 0.2, 0.2, 1)), ("Rough", (0.5, 0.5, 0.5, 1)), ("nor_gl", (0.5, 0.5, 1, 1)),
                   ("nor_dx", (0.5, 0.5, 1, 1)), ("Displacement", (0.3, 0.3, 0.3, 1)), ("arm", (1, 0.4, 0.1, 1))]:
    image(f"{key}.png", 8, 8, "PNG", color)
for o in list(bpy.data.objects):
    bpy.data.objects.remove(o)
bpy.ops.mesh.primitive_cube_add()
bpy.context.active_object.name = "Crate"
bpy.ops.export_scene.gltf(filepath=f"{out}/crate.gltf", export_format="GLTF_SEPARATE")
"""


@pytest.fixture(scope="module")
def assets(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("polyhaven-assets")
    run_in_blender(MAKE_ASSETS, str(out), workdir=out)
    return out


def entry(base: str, path: Path, **extra) -> dict:
    data = path.read_bytes()
    return {"url": f"{base}/dl/{path.name}", "md5": hashlib.md5(data).hexdigest(), "size": len(data), **extra}


def api(assets: Path, faults: dict[str, str] | None = None):
    """Routes of the fake, built once its base URL is known."""
    faults = faults or {}
    routes: dict = {}
    state: dict = {}

    def build(base: str) -> None:
        bin_name = next(p.name for p in assets.glob("*.bin"))
        gltf_include = {bin_name: entry(base, assets / bin_name)}
        if faults.get("include") == "escape":
            gltf_include = {"../../evil.bin": entry(base, assets / bin_name)}
        tex = {key: {"1k": {"png": entry(base, assets / f"{key}.png")}} for key in
               ("Diffuse", "Rough", "nor_gl", "nor_dx", "Displacement", "arm")}
        tex["blend"] = {"1k": {"blend": {"url": f"{base}/dl/none.blend", "md5": "0", "size": 1}}}
        state["files"] = {
            "kloofendal_43d_clear_puresky": {"hdri": {"1k": {"hdr": entry(base, assets / "sky.hdr")},
                                                      "2k": {"hdr": entry(base, assets / "sky.hdr")}}},
            "rusty_metal_02": tex,
            "wooden_crate_01": {"gltf": {"1k": {"gltf": entry(base, assets / "crate.gltf", include=gltf_include)}}},
        }
        if faults.get("md5"):
            state["files"]["kloofendal_43d_clear_puresky"]["hdri"]["1k"]["hdr"]["md5"] = "0" * 32

    def files(req):
        asset_id = req.path.rsplit("/", 1)[1]
        if faults.get("files") == "500":
            return Response(500, {"error": "internal"})
        if asset_id not in state["files"]:
            return Response(404, {"error": "not found"})
        return Response(body=state["files"][asset_id])

    def dl(name):
        def serve(req):
            data = (assets / name).read_bytes()
            if faults.get("dl") == "slow":
                time.sleep(3)
            if faults.get("dl") == "cut":
                return Response(body=data[: len(data) // 2], headers={"Content-Length": str(len(data))})
            return Response(body=data, headers={"Content-Type": "application/octet-stream"})
        return serve

    for asset_id in ("kloofendal_43d_clear_puresky", "rusty_metal_02", "wooden_crate_01", "missing_thing"):
        routes[("GET", f"/files/{asset_id}")] = files
    for path in assets.iterdir():
        if path.is_file():
            routes[("GET", f"/dl/{path.name}")] = dl(path.name)
    return routes, build


SNAPSHOT = ("import bpy, json\nprint(json.dumps({k: sorted(d.name for d in getattr(bpy.data, k)) for k in"
            " ('worlds', 'materials', 'images', 'objects')}))")


async def snapshot(client, call) -> dict:
    return json.loads((await call(client, "blender_execute_code", {"code": SNAPSHOT}))["result"])


@pytest.fixture
def blendbus_peer_settings(request) -> list[str]:
    return ["allow_code_execution=true", "polyhaven.enabled=true", f"polyhaven.api_url={request.node.fake_url}",
            "polyhaven.timeout_s=1.5"]


@pytest.fixture
def fake(assets, request):
    faults = getattr(request, "param", None)
    routes, build = api(assets, faults)
    with fake_api(routes) as (base, seen):
        build(base)
        request.node.fake_url = base
        yield seen


async def test_hdri_lights_the_world_and_replaces_the_previous_one(fake, blendbus_bpy_client, blendbus_call):
    client, call = blendbus_bpy_client, blendbus_call
    seen_progress = []

    async def progress(value, total, message):
        seen_progress.append(message)

    result = await client.call_tool("blender_download_polyhaven_asset", {
        "asset_id": "kloofendal_43d_clear_puresky", "asset_type": "hdris", "resolution": "1k"},
        progress_callback=progress)
    env = result.structured_content
    assert env["status"] == p.COMPLETED, env
    assert env["result"]["world"] == "PolyHaven kloofendal_43d_clear_puresky"
    assert any("downloading" in (m or "") for m in seen_progress)
    check = ("import bpy, json\nw = bpy.context.scene.world\nt = w.node_tree\n"
             "print(json.dumps({'links': sorted(f'{l.from_node.type}>{l.to_node.type}' for l in t.links),"
             " 'packed': [n.image.packed_file is not None for n in t.nodes if n.type == 'TEX_ENVIRONMENT'],"
             " 'size': [list(n.image.size) for n in t.nodes if n.type == 'TEX_ENVIRONMENT']}))")
    world = json.loads((await call(client, "blender_execute_code", {"code": check}))["result"])
    assert world["links"] == ["BACKGROUND>OUTPUT_WORLD", "MAPPING>TEX_ENVIRONMENT", "TEX_COORD>MAPPING",
                              "TEX_ENVIRONMENT>BACKGROUND"]
    assert world["packed"] == [True] and world["size"] == [[16, 8]]
    again = await call(client, "blender_download_polyhaven_asset", {
        "asset_id": "kloofendal_43d_clear_puresky", "asset_type": "hdris", "resolution": "2k"})
    assert again["result"]["replaced_world"] == "PolyHaven kloofendal_43d_clear_puresky"
    state = await snapshot(client, call)
    assert len([w for w in state["worlds"] if w.startswith("PolyHaven")]) == 1  # replaced cleanly
    assert len([i for i in state["images"] if i.startswith("kloofendal")]) == 1


async def test_texture_set_becomes_one_wired_material(fake, blendbus_bpy_client, blendbus_call):
    client, call = blendbus_bpy_client, blendbus_call
    env = await call(client, "blender_download_polyhaven_asset",
                     {"asset_id": "rusty_metal_02", "asset_type": "textures", "resolution": "1k"})
    assert env["status"] == p.COMPLETED, env
    maps = env["result"]["maps"]
    assert maps == {"roughness": "Roughness", "metallic": "arm.B", "ao": "multiplied into base color",
                    "color": "Base Color", "normal_gl": "Normal (Normal Map node)",
                    "displacement": "Material Output Displacement"}
    check = ("import bpy, json\nm = bpy.data.materials['PolyHaven rusty_metal_02']\n"
             "print(json.dumps(sorted(f'{l.from_node.type}:{l.from_socket.name}>{l.to_node.type}:{l.to_socket.name}'"
             " for l in m.node_tree.links)))")
    links = json.loads((await call(client, "blender_execute_code", {"code": check}))["result"])
    assert "NORMAL_MAP:Normal>BSDF_PRINCIPLED:Normal" in links
    assert "DISPLACEMENT:Displacement>OUTPUT_MATERIAL:Displacement" in links
    assert "SEPARATE_COLOR:Blue>BSDF_PRINCIPLED:Metallic" in links
    assert "MIX:Result>BSDF_PRINCIPLED:Base Color" in links
    state = await snapshot(client, call)
    assert not any("nor_dx" in i for i in state["images"])  # nor_dx only when there is no nor_gl
    applied = await call(client, "blender_set_texture", {"object_name": "Cube", "texture_id": "rusty_metal_02"})
    assert applied["status"] == p.COMPLETED and applied["result"]["material"] == "PolyHaven rusty_metal_02"
    for bad, needle in (({"object_name": "Nope", "texture_id": "rusty_metal_02"}, "no object"),
                        ({"object_name": "Light", "texture_id": "rusty_metal_02"}, "not a mesh"),
                        ({"object_name": "Cube", "texture_id": "bricks_01"}, "not downloaded yet")):
        env = await call(client, "blender_set_texture", bad)
        assert env["status"] == p.FAILED and needle in env["error"]


async def test_model_imports_with_its_include_files(fake, blendbus_bpy_client, blendbus_call):
    client, call = blendbus_bpy_client, blendbus_call
    env = await call(client, "blender_download_polyhaven_asset",
                     {"asset_id": "wooden_crate_01", "asset_type": "models", "resolution": "1k"})
    assert env["status"] == p.COMPLETED, env
    assert env["result"]["objects"] == ["Crate"]
    assert any(r.path.endswith(".bin") for r in fake)  # the include was fetched next to the .gltf


FAULTS = [
    ({"files": "500"}, {"asset_id": "kloofendal_43d_clear_puresky"}, "HTTP 500"),
    ({"md5": True}, {"asset_id": "kloofendal_43d_clear_puresky"}, "md5 mismatch"),
    ({"dl": "cut"}, {"asset_id": "kloofendal_43d_clear_puresky"}, "cut off"),
    ({"dl": "slow"}, {"asset_id": "kloofendal_43d_clear_puresky"}, "timeout"),
    ({}, {"asset_id": "missing_thing"}, "has no asset 'missing_thing'"),
    ({}, {"asset_id": "kloofendal_43d_clear_puresky", "resolution": "16k"}, "available resolutions: 1k, 2k"),
    ({}, {"asset_id": "kloofendal_43d_clear_puresky", "file_format": "exr"}, "available formats: hdr"),
    ({"include": "escape"}, {"asset_id": "wooden_crate_01", "asset_type": "models"}, "escapes the download folder"),
]


@pytest.mark.parametrize(("fake", "arguments", "needle"), FAULTS, indirect=["fake"],
                         ids=["http500", "md5", "cut", "slow", "unknown", "resolution", "format", "include"])
async def test_faults_are_explained_and_leave_nothing_behind(fake, blendbus_bpy_client, blendbus_call, arguments,
                                                             needle):
    client, call = blendbus_bpy_client, blendbus_call
    before = await snapshot(client, call)
    env = await call(client, "blender_download_polyhaven_asset",
                     {"asset_type": "hdris", "resolution": "1k", **arguments})
    assert env["status"] == p.FAILED and needle in env["error"], env
    assert await snapshot(client, call) == before
