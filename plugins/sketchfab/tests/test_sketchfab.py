"""Sketchfab status and search through the bus, against a loopback fake that checks the auth header."""

from __future__ import annotations

import pytest

from blendbus import protocol as p
from blendbus.testing import call_envelope
from blendbus.testing.fakehttp import Response, fake_api

pytestmark = pytest.mark.anyio
KEY = "sk-test-123"


def authed(body):
    return lambda req: Response(body=body) if req.headers.get("Authorization") == f"Token {KEY}" else \
        Response(401, {"detail": "Invalid token"})


SEARCH = {"results": [{"uid": "a1b2c3", "name": "Old Chair", "user": {"username": "maker"},
                       "license": {"label": "CC Attribution"}, "faceCount": 1234, "isDownloadable": True,
                       "thumbnails": {"images": [{"url": "http://x/200.png", "width": 200, "height": 200},
                                                 {"url": "http://x/640.png", "width": 640, "height": 360}]}}],
          "next": "http://x/next", "cursors": {"next": "24", "previous": None}}


async def test_status_and_search(blendbus_server, blendbus_peer_factory, blendbus_client):
    routes = {("GET", "/me"): authed({"username": "maker"}), ("GET", "/search"): authed(SEARCH)}
    with fake_api(routes) as (base, seen):
        await blendbus_peer_factory(settings={"sketchfab.enabled": True, "sketchfab.api_key": KEY,
                                              "sketchfab.api_url": base})
        status = await call_envelope(blendbus_client, "blender_get_sketchfab_status")
        assert status["result"]["key_works"] is True and status["result"]["username"] == "maker"
        env = await call_envelope(blendbus_client, "blender_search_sketchfab_models", {"query": "chair"})
        model = env["result"]["models"][0]
        assert model == {"uid": "a1b2c3", "name": "Old Chair", "author": "maker", "license": "CC Attribution",
                         "face_count": 1234, "downloadable": True, "thumbnail_url": "http://x/640.png"}
        assert env["result"]["next_cursor"] == "24"
        assert seen[-1].query["q"] == "chair" and seen[-1].query["downloadable"] == "true"


async def test_bad_key_is_reported_without_leaking_it(blendbus_server, blendbus_peer_factory, blendbus_client):
    with fake_api({("GET", "/me"): authed({}), ("GET", "/search"): authed(SEARCH)}) as (base, _):
        await blendbus_peer_factory(settings={"sketchfab.enabled": True, "sketchfab.api_key": "wrong-key",
                                              "sketchfab.api_url": base})
        status = await call_envelope(blendbus_client, "blender_get_sketchfab_status")
        assert status["result"]["key_works"] is False and "rejected" in status["result"]["error"]
        env = await call_envelope(blendbus_client, "blender_search_sketchfab_models", {"query": "chair"})
        assert env["status"] == p.FAILED and "401" in env["error"]
        assert "wrong-key" not in str(status) + str(env)
