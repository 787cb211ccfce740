"""Sketchfab preview and import into real Blender, against a loopback fake serving a real zipped glTF.

Faults from the fake: a bad key (401), a model that is not downloadable (403), an expired link,
a zip-slip member, an archive without glTF, and a slow answer.
"""

from __future__ import annotations

import base64
import json
import time
import zipfile
from pathlib import Path

import pytest

from blendbus import protocol as p
from blendbus.testing.blender import run_in_blender
from blendbus.testing.fakehttp import Response, fake_api

pytestmark = pytest.mark.anyio
KEY = "sk-real-looking-key"

MAKE = r"""
import sys, bpy
out = sys.argv[1]
for o in list(bpy.data.objects):
    bpy.data.objects.remove(o)
bpy.ops.mesh.primitive_cube_add(size=1)
box = bpy.context.active_object
box.name, box.scale = "Chair", (2.0, 1.0, 0.5)
bpy.ops.object.transform_apply(scale=True)
bpy.ops.export_scene.gltf(filepath=f"{out}/scene.gltf", export_format="GLTF_SEPARATE")
img = bpy.data.images.new("thumb", 640, 360)
img.filepath_raw, img.file_format = f"{out}/thumb.png", "PNG"
img.save()
"""


@pytest.fixture(scope="module")
def assets(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("sketchfab-assets")
    run_in_blender(MAKE, str(out), workdir=out)
    gltf_files = [f for f in out.iterdir() if f.suffix in (".gltf", ".bin")]
    with zipfile.ZipFile(out / "ok.zip", "w") as zf:
        for f in gltf_files:
            zf.write(f, f.name)
        zf.writestr("license.txt", "CC-BY")
    with zipfile.ZipFile(out / "slip.zip", "w") as zf:
        zf.writestr("../../escaped.txt", "gotcha")
        for f in gltf_files:
            zf.write(f, f.name)
    with zipfile.ZipFile(out / "nogltf.zip", "w") as zf:
        zf.writestr("readme.txt", "no model here")
    return out


def authed(handler):
    def route(req):
        if req.headers.get("Authorization") != f"Token {KEY}":
            return Response(401, {"detail": "Invalid token"})
        return handler(req)
    return route


def routes(assets: Path, base_box: dict) -> dict:
    def detail(req):
        uid = req.path.split("/")[2]
        base = base_box["base"]
        return Response(body={"uid": uid, "name": "Old Chair", "user": {"username": "maker"},
                              "license": {"label": "CC Attribution"}, "thumbnails": {"images": [
                                  {"url": f"{base}/thumbs/200.png", "width": 200, "height": 112},
                                  {"url": f"{base}/thumbs/640.png", "width": 640, "height": 360},
                                  {"url": f"{base}/thumbs/1024.png", "width": 1024, "height": 576}]}})

    def links(req):
        uid = req.path.split("/")[2]
        if uid == "locked":
            return Response(403, {"detail": "not downloadable"})
        if uid == "slow":
            time.sleep(3)
        archive = {"slip": "slip.zip", "nogltf": "nogltf.zip"}.get(uid, "ok.zip")
        return Response(body={"gltf": {"url": f"{base_box['base']}/files/{uid}/{archive}?sig=abc",
                                       "size": (assets / archive).stat().st_size, "expires": 300}})

    def file(req):
        if "Authorization" in req.headers:
            return Response(400, {"detail": "pre-signed URLs take no Authorization header"})
        if "/expired/" in req.path:
            return Response(403, {"detail": "Request has expired"})
        return Response(body=(assets / req.path.rsplit("/", 1)[1]).read_bytes())

    table = {("GET", "/me"): authed(lambda req: Response(body={"username": "maker"})),
             ("GET", "/thumbs/640.png"): lambda req: Response(body=(assets / "thumb.png").read_bytes())}
    for uid in ("a1b2c3", "locked", "slow", "slip", "nogltf", "expired"):
        table[("GET", f"/models/{uid}")] = authed(detail)
        table[("GET", f"/models/{uid}/download")] = authed(links)
        for archive in ("ok.zip", "slip.zip", "nogltf.zip"):
            table[("GET", f"/files/{uid}/{archive}")] = file
    return table


@pytest.fixture
def fake(assets, request):
    box: dict = {}
    with fake_api(routes(assets, box)) as (base, seen):
        box["base"] = base
        request.node.fake_url = base
        yield seen


@pytest.fixture
def blendbus_peer_settings(request) -> list[str]:
    key = getattr(request, "param", KEY)
    return ["allow_code_execution=true", "sketchfab.enabled=true", f"sketchfab.api_key={key}",
            f"sketchfab.api_url={request.node.fake_url}", "sketchfab.timeout_s=1.5"]


SNAPSHOT = "import bpy, json\nprint(json.dumps(sorted(o.name for o in bpy.data.objects)))"


async def test_preview_is_an_image_with_credits(fake, blendbus_bpy_client):
    result = await blendbus_bpy_client.call_tool("blender_get_sketchfab_model_preview", {"uid": "a1b2c3"})
    env = result.structured_content
    assert env["status"] == p.COMPLETED, env
    assert env["result"] == {"uid": "a1b2c3", "name": "Old Chair", "author": "maker", "license": "CC Attribution",
                             "thumbnail": {"width": 640, "height": 360}}
    image = next(c for c in result.content if c.type == "image")
    assert base64.b64decode(image.data)[:8] == b"\x89PNG\r\n\x1a\n"


async def test_import_normalises_the_largest_dimension(fake, blendbus_bpy_client, blendbus_call):
    client, call = blendbus_bpy_client, blendbus_call
    env = await call(client, "blender_download_sketchfab_model", {"uid": "a1b2c3", "target_size": 3.0})
    assert env["status"] == p.COMPLETED, env
    result = env["result"]
    assert result["objects"] == ["Chair"] and result["scale"] == pytest.approx(1.5, abs=1e-3)
    assert max(result["dimensions"]) == pytest.approx(3.0, abs=1e-3)
    measured = json.loads((await call(client, "blender_execute_code", {"code": (
        "import bpy, json\nprint(json.dumps(list(bpy.data.objects['Chair'].dimensions)))")}))["result"])
    assert max(measured) == pytest.approx(3.0, abs=1e-3)
    assert not any(r.path.startswith("/files/") and "Authorization" in r.headers for r in fake)


FAULTS = [
    ("locked", "not downloadable"),
    ("expired", "expired"),
    ("slip", "escapes the extraction folder"),
    ("nogltf", "no .gltf or .glb"),
    ("slow", "timeout"),
]


@pytest.mark.parametrize(("uid", "needle"), FAULTS, ids=[f[0] for f in FAULTS])
async def test_faults_are_explained_and_import_nothing(fake, blendbus_bpy_client, blendbus_call, uid, needle):
    client, call = blendbus_bpy_client, blendbus_call
    before = (await call(client, "blender_execute_code", {"code": SNAPSHOT}))["result"]
    env = await call(client, "blender_download_sketchfab_model", {"uid": uid, "target_size": 1.0})
    assert env["status"] == p.FAILED and needle in env["error"], env
    assert (await call(client, "blender_execute_code", {"code": SNAPSHOT}))["result"] == before


@pytest.mark.parametrize("blendbus_peer_settings", ["wrong-key"], indirect=True)
async def test_a_bad_key_is_named_not_shown(fake, blendbus_bpy_client, blendbus_call):
    env = await blendbus_call(blendbus_bpy_client, "blender_download_sketchfab_model", {"uid": "a1b2c3"})
    assert env["status"] == p.FAILED and "rejected the API key" in env["error"]
    assert "wrong-key" not in json.dumps(env)
