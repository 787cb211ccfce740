"""Poly Haven search and categories through the bus, against a loopback fake of the API."""

from __future__ import annotations

import pytest

from blendbus import protocol as p
from blendbus.testing import call_envelope
from blendbus.testing.fakehttp import Response, fake_api

pytestmark = pytest.mark.anyio

ASSETS = {
    "kloofendal_43d_clear_puresky": {"name": "Kloofendal 43d Clear (Pure Sky)", "type": 0, "download_count": 900,
                                     "categories": ["outdoor", "skies"], "tags": ["clear", "sunny"], "max_resolution": [16384, 8192]},
    "studio_small_09": {"name": "Studio Small 09", "type": 0, "download_count": 1500,
                        "categories": ["indoor", "studio"], "tags": ["soft", "lightbox"], "max_resolution": [8192, 4096]},
    "rocky_trail": {"name": "Rocky Trail", "type": 1, "download_count": 300, "categories": ["terrain"], "tags": ["rock"]},
}


def routes():
    def assets(req):
        wanted = {"hdris": 0, "textures": 1, "models": 2}.get(req.query.get("type", "all"))
        cats = set(filter(None, req.query.get("categories", "").split(",")))
        return Response(body={k: v for k, v in ASSETS.items()
                              if (wanted is None or v["type"] == wanted) and cats <= set(v["categories"])})

    return {
        ("GET", "/assets"): assets,
        ("GET", "/categories/hdris"): lambda req: Response(body={"all": 2, "outdoor": 1, "indoor": 1, "skies": 1}),
    }


async def test_search_and_categories(blendbus_server, blendbus_peer_factory, blendbus_client):
    with fake_api(routes()) as (base, seen):
        await blendbus_peer_factory(settings={"polyhaven.enabled": True, "polyhaven.api_url": base})
        env = await call_envelope(blendbus_client, "blender_search_polyhaven_assets", {"asset_type": "hdris"})
        assert env["status"] == p.COMPLETED
        assert [a["id"] for a in env["result"]["assets"]] == ["studio_small_09", "kloofendal_43d_clear_puresky"]
        env = await call_envelope(blendbus_client, "blender_search_polyhaven_assets",
                                  {"asset_type": "hdris", "query": "sunny", "limit": 1})
        assert env["result"]["total"] == 1 and env["result"]["assets"][0]["type"] == "hdris"
        cats = await call_envelope(blendbus_client, "blender_get_polyhaven_categories", {"asset_type": "hdris"})
        assert list(cats["result"]["categories"])[0] == "all"
        assert all(r.headers.get("User-Agent", "").startswith("blendbus/") for r in seen)


async def test_disabled_and_unreachable_api_are_explained(blendbus_server, blendbus_peer_factory, blendbus_client):
    await blendbus_peer_factory(settings={"polyhaven.api_url": "http://127.0.0.1:9"})
    status = await call_envelope(blendbus_client, "blender_get_polyhaven_status")
    assert status["result"]["enabled"] is False and "polyhaven.enabled" in status["result"]["how_to_enable"]
    env = await call_envelope(blendbus_client, "blender_get_polyhaven_categories", {"asset_type": "hdris"})
    assert env["status"] == p.FAILED and "polyhaven.enabled" in env["error"]


async def test_hdri_ids_complete_from_the_api(blendbus_server, blendbus_peer_factory, blendbus_client):
    """The light_with_hdri prompt's argument autocompletes with Poly Haven's HDRI ids, most downloaded first."""
    from mcp import types

    with fake_api(routes()) as (base, _):
        await blendbus_peer_factory(settings={"polyhaven.enabled": True, "polyhaven.api_url": base})
        ref = types.PromptReference(type="ref/prompt", name="light_with_hdri")
        every = (await blendbus_client.complete(ref, {"name": "hdri", "value": ""})).completion
        assert every.values == ["studio_small_09", "kloofendal_43d_clear_puresky"]  # HDRIs only, by downloads
        typed = (await blendbus_client.complete(ref, {"name": "hdri", "value": "klo"})).completion
        assert typed.values == ["kloofendal_43d_clear_puresky"]
        prompt = await blendbus_client.get_prompt("light_with_hdri", {"hdri": "studio_small_09"})
        assert 'asset_id="studio_small_09"' in prompt.messages[0].content.text
