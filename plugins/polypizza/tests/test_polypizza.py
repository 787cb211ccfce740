"""Poly Pizza against a loopback fake of its API and static host, importing a real GLB made by bpy.

The fake answers only Capitalised numeric filters (as the real service does: it ignores the rest),
insists on the key on the API and its absence on the static host, and can send the HTML challenge
page the real static host sends to datacenter addresses.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from blendbus import protocol as p
from blendbus.testing.blender import make_model
from blendbus.testing.fakehttp import Response, fake_api

pytestmark = pytest.mark.anyio
KEY = "pp-real-looking-key-123"

CHALLENGE = b"<!DOCTYPE html><html><head><title>Just a moment...</title></head><body>challenge</body></html>"


def model(model_id: str, base: str, **extra) -> dict:
    return {"ID": model_id, "Title": "Wooden Crate", "Description": "A crate", "Attribution":
            "Wooden Crate by Quaternius [CC-BY] via Poly Pizza", "Thumbnail": f"{base}/thumbs/{model_id}.webp",
            "Download": f"{base}/static/{model_id}.glb", "Tri Count": 0, "Creator": {"Username": "Quaternius"},
            "Category": "Objects", "Tags": ["crate"], "Licence": "CC-BY 3.0", "Animated": False, **extra}


def _header(req, name: str) -> str | None:
    return {k.lower(): v for k, v in req.headers.items()}.get(name)


@pytest.fixture(scope="module")
def glb(tmp_path_factory) -> Path:
    return make_model(tmp_path_factory.mktemp("polypizza-assets"), "Crate", "glb", scale=(2.0, 1.0, 1.0))["glb"]


@pytest.fixture
def fake(glb, request):
    box: dict = {}

    def keyed(handler):
        def route(req):
            if _header(req, "x-auth-token") != KEY:
                return Response(403, {"error": "Invalid API key"})
            return handler(req)
        return route

    def search(req):
        known = {"Limit", "Page", "Category", "License", "Animated"}
        assert set(req.query) <= known, req.query  # lowercase parameters would be silently ignored for real
        results = [model("crate01", box["base"], **{"Tri Count": 120}), model("crate02", box["base"])]
        return Response(body={"total": 40, "results": results[: int(req.query.get("Limit", 32))]})

    def static(req):
        assert _header(req, "x-auth-token") is None, "the key went to the static host"
        name = req.path.rsplit("/", 1)[1]
        if name == "blocked.glb":
            return Response(403, CHALLENGE, {"Content-Type": "text/html", "cf-mitigated": "challenge"})
        if name == "html.glb":
            return Response(200, CHALLENGE, {"Content-Type": "text/html"})
        return Response(body=glb.read_bytes(), headers={"Content-Type": "model/gltf-binary"})

    table = {("GET", "/v1.1/search/wooden%20crate"): keyed(search), ("GET", "/v1.1/search/chair"): keyed(search)}
    for model_id in ("crate01", "blocked", "html"):
        table[("GET", f"/v1.1/model/{model_id}")] = keyed(lambda req: Response(body=model(
            req.path.rsplit("/", 1)[1], box["base"])))
        table[("GET", f"/static/{model_id}.glb")] = static
    with fake_api(table) as (base, seen):
        box["base"] = base
        request.node.fake_url = base
        yield SimpleNamespace(base=base, seen=seen)


@pytest.fixture
def blendbus_peer_settings(request) -> list[str]:
    key = getattr(request, "param", KEY)
    return ["allow_code_execution=true", "polypizza.enabled=true", f"polypizza.api_key={key}",
            f"polypizza.api_url={request.node.fake_url}/v1.1"]


async def test_search_sends_capitalised_numeric_filters(fake, blendbus_bpy_client, blendbus_call):
    env = await blendbus_call(blendbus_bpy_client, "blender_search_polypizza_models", {
        "query": "wooden crate", "category": "furniture & decor", "license": "cc0", "animated": True,
        "limit": 2, "page": 1})
    assert env["status"] == p.COMPLETED, env["error"]
    asked = next(r for r in fake.seen if r.path.startswith("/v1.1/search/"))
    assert asked.query == {"Limit": "2", "Page": "1", "Category": "4", "License": "1", "Animated": "1"}
    first, second = env["result"]["models"]
    assert first == {"id": "crate01", "title": "Wooden Crate", "creator": "Quaternius", "licence": "CC-BY 3.0",
                     "attribution": "Wooden Crate by Quaternius [CC-BY] via Poly Pizza", "tri_count": 120,
                     "category": "Objects", "animated": False, "thumbnail": f"{fake.base}/thumbs/crate01.webp"}
    assert second["tri_count"] == "unknown"  # the API says 0 when it does not know
    assert (env["result"]["total"], env["result"]["next_page"]) == (40, 2)
    wrong = await blendbus_call(blendbus_bpy_client, "blender_search_polypizza_models",
                                {"query": "chair", "category": "Furnitur & Decor"})
    assert wrong["status"] == p.FAILED and "did you mean 'Furniture & Decor'" in wrong["error"]


async def test_download_imports_with_attribution_and_never_sends_the_key_to_the_static_host(
        fake, blendbus_bpy_client, blendbus_call):
    client, call = blendbus_bpy_client, blendbus_call
    env = await call(client, "blender_download_polypizza_model", {"model_id": "crate01", "target_size": 4.0})
    assert env["status"] == p.COMPLETED, env["error"]
    result = env["result"]
    assert result["object"] == "Wooden Crate" and result["attribution_required"] is True
    assert result["attribution"] == "Wooden Crate by Quaternius [CC-BY] via Poly Pizza"
    assert max(result["dimensions"]) == pytest.approx(4.0, abs=1e-3)
    props = json.loads((await call(client, "blender_execute_code", {"code": (
        "import bpy, json\no = bpy.data.objects['Wooden Crate']\n"
        "print(json.dumps({k: o[k] for k in ('polypizza_id', 'polypizza_licence', 'polypizza_attribution')}))")}
    ))["result"])
    assert props == {"polypizza_id": "crate01", "polypizza_licence": "CC-BY 3.0",
                     "polypizza_attribution": "Wooden Crate by Quaternius [CC-BY] via Poly Pizza"}
    assert all(_header(r, "x-auth-token") == KEY for r in fake.seen if r.path.startswith("/v1.1/"))


@pytest.mark.parametrize("model_id", ["blocked", "html"])
async def test_a_refusing_download_host_is_named_and_nothing_is_imported(fake, blendbus_bpy_client, blendbus_call,
                                                                         model_id):
    snapshot = {"code": "import bpy\nprint(len(bpy.data.objects), len(bpy.data.meshes))"}
    before = (await blendbus_call(blendbus_bpy_client, "blender_execute_code", snapshot))["result"]
    env = await blendbus_call(blendbus_bpy_client, "blender_download_polypizza_model", {"model_id": model_id})
    assert env["status"] == p.FAILED and "download host refused this machine" in env["error"], env
    assert (await blendbus_call(blendbus_bpy_client, "blender_execute_code", snapshot))["result"] == before


@pytest.mark.parametrize("blendbus_peer_settings", ["wrong-key"], indirect=True)
async def test_a_bad_key_or_id_is_named_not_shown(fake, blendbus_bpy_client, blendbus_call):
    env = await blendbus_call(blendbus_bpy_client, "blender_get_polypizza_status")
    assert env["status"] == p.COMPLETED and env["result"]["key_works"] is False
    assert "wrong-key" not in json.dumps(env) and "rejected the API key" in env["result"]["error"]
    bad = await blendbus_call(blendbus_bpy_client, "blender_download_polypizza_model", {"model_id": "../../etc"})
    assert bad["status"] == p.INVALID and "model_id" in bad["error"]

