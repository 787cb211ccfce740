"""Change notifications from a real Blender: a scene edited through blendbus reaches a
`subscriptions/listen` stream (2026-07-28, raw JSON-RPC over HTTP: the Python SDK has no listen
client) and a `resources/subscribe` session (2025-11-25, the official TypeScript SDK client)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx2
import pytest

from blendbus import protocol as p
from blendbus.client import connect
from blendbus.testing import call_envelope, serve_http
from blendbus.testing.blender import blender_peer, needs_bpy
from blendbus.testing.raw import ModernClient

from .nodeclients import run_node

pytestmark = pytest.mark.anyio
MODERN = "2026-07-28"
SUBSCRIPTION_ID = "io.modelcontextprotocol/subscriptionId"


async def _until(check: Any, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


@needs_bpy
async def test_a_scene_change_reaches_a_listener(blendbus_server, tmp_path):
    async with serve_http(blendbus_server) as url, blender_peer(blendbus_server, url, tmp_path,
                                                               "allow_code_execution=true"):
        frames: list[dict[str, Any]] = []
        async with httpx2.AsyncClient(timeout=None) as http:
            listener = asyncio.ensure_future(ModernClient(http, url, None, tasks=False).listen(
                {"resourceSubscriptions": ["blender://scene/objects", "blender://scene/object/Watched"]}, frames,
                request_id=77))
            try:
                await _until(lambda: frames)
                assert frames[0]["method"] == "notifications/subscriptions/acknowledged"
                async with connect(url) as client:
                    env = await call_envelope(client, "blender_execute_code", {
                        "code": "import bpy\nbpy.ops.mesh.primitive_cube_add()\nbpy.context.object.name = 'Watched'"})
                    assert env["status"] == p.COMPLETED, env
                updated = lambda: {f["params"]["uri"] for f in frames  # noqa: E731
                                   if f.get("method") == "notifications/resources/updated"}
                await _until(lambda: updated() >= {"blender://scene/objects", "blender://scene/object/Watched"})
                assert "blender://scene/info" not in updated()  # never delivered: not asked for
                assert all(f["params"]["_meta"][SUBSCRIPTION_ID] == 77 for f in frames)
                async with connect(url) as client:  # an unchanged scene says nothing
                    count = len(frames)
                    await call_envelope(client, "blender_execute_code", {"code": "print(1)"})
                    await asyncio.sleep(1.0)
                    assert len(frames) == count
            finally:
                listener.cancel()
                await asyncio.gather(listener, return_exceptions=True)


@needs_bpy
async def test_a_subscribed_session_hears_a_scene_change(blendbus_server, tmp_path):
    async with serve_http(blendbus_server) as url, blender_peer(blendbus_server, url, tmp_path,
                                                               "allow_code_execution=true"):
        seen = await run_node("http-subscribe", url, "blender://scene/info")
    assert seen["subscribe_capability"] is True
    assert seen["updated"] == ["blender://scene/info"] and seen["status"] == "completed"
