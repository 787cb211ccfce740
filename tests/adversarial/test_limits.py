"""Every limit refuses with a clear error and the server stays healthy."""

from __future__ import annotations

import asyncio

import httpx2
import pytest

from blendbus import protocol as p
from blendbus.dispatch import Limits
from blendbus.testing import call_envelope, eventually, make_server, serve_http
from blendbus.testing import plugin as testing_plugin

pytestmark = pytest.mark.anyio


async def test_oversized_arguments_are_refused(blendbus_server, blendbus_peer_factory, blendbus_client):
    blendbus_server.hub.limits.max_arguments_bytes = 10_000
    await blendbus_peer_factory()
    env = await call_envelope(blendbus_client, "blender_execute_code", {"code": "#" + "x" * 20_000})
    assert env["status"] == p.INVALID and "above the cap of 10000" in env["error"]
    assert (await call_envelope(blendbus_client, "blender_execute_code", {"code": "print(1)"}))["status"] == p.COMPLETED


async def test_too_many_calls_per_user_get_busy(blendbus_server, blendbus_peer_factory, blendbus_client):
    blendbus_server.hub.limits.max_calls_per_user = 2
    peer = await blendbus_peer_factory(concurrency=4)
    slow = [asyncio.ensure_future(call_envelope(blendbus_client, "blender_test_sleep", {"seconds": 2}))
            for _ in range(2)]

    async def both_sent() -> bool:
        return len(await blendbus_server.hub.jobs.in_flight("local", peer.uuid)) == 2

    await eventually(both_sent, "both slow calls in flight", 10)
    env = await call_envelope(blendbus_client, "blender_test_noop")
    assert env["status"] == p.BUSY and "already in flight" in env["error"]
    assert [e["status"] for e in await asyncio.gather(*slow)] == [p.COMPLETED, p.COMPLETED]
    assert (await call_envelope(blendbus_client, "blender_test_noop"))["status"] == p.COMPLETED


async def test_a_full_peer_queue_gives_busy(blendbus_server, blendbus_client):
    blendbus_server.hub.limits.max_queued_per_peer = 1
    await blendbus_server.hub.register_peer("local", "stalled")  # registered, never polls
    first = asyncio.ensure_future(call_envelope(blendbus_client, "blender_test_noop", {"timeout_s": 1}))
    await asyncio.sleep(0.05)
    env = await call_envelope(blendbus_client, "blender_test_noop")
    assert env["status"] == p.BUSY and "queued jobs" in env["error"]
    assert (await first)["status"] in (p.TIMEOUT, p.LOST)


async def test_request_bodies_over_the_limit_are_refused(tmp_path):
    server = make_server([("testing", testing_plugin)], state_dir=tmp_path, limits=Limits(max_result_bytes=1024 * 1024))
    async with serve_http(server) as url:
        async with httpx2.AsyncClient() as http:
            big = b'{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"x":"' + b"a" * (3 * 1024 * 1024) + b'"}}'
            r = await http.post(url, content=big, headers={"Content-Type": "application/json",
                                                          "Accept": "application/json, text/event-stream"})
            assert r.status_code == 413

            async def chunked():  # no Content-Length: the limit is enforced as the body streams in
                yield big[:1024]
                for start in range(1024, len(big), 256 * 1024):
                    yield big[start:start + 256 * 1024]

            r = await http.post(url, content=chunked(), headers={"Content-Type": "application/json",
                                                                "Accept": "application/json, text/event-stream"})
            assert r.status_code == 413 and "content-length" not in {k.lower() for k in r.request.headers}
            ok = await http.get(url.replace("/mcp", "/healthz"))
            assert ok.json()["ok"] is True


async def test_wait_caps_are_enforced(blendbus_client):
    for tool, arguments in (("blender_get_job", {"job_id": "j", "wait_s": 10_000}),
                            ("blender_test_noop", {"timeout_s": 1e9}),
                            ("blender_watch_bus", {"wait_s": 10_000})):
        env = await call_envelope(blendbus_client, tool, arguments)
        assert env["status"] == p.INVALID and ("wait_s" in env["error"] or "timeout_s" in env["error"])


@pytest.mark.parametrize(("tool", "arguments"), [
    ("blender_download_polyhaven_asset", {"asset_id": "../../admin", "asset_type": "hdris"}),
    ("blender_download_polyhaven_asset", {"asset_id": "x?redirect=http://evil", "asset_type": "hdris"}),
    ("blender_get_sketchfab_model_preview", {"uid": "abc/../../me"}),
    ("blender_poll_rodin_job_status", {"request_id": "r/../../../admin"}),
    ("blender_import_generated_asset", {"name": "x", "task_uuid": "http://169.254.169.254/"}),
])
async def test_ids_cannot_steer_api_requests(blendbus_client, tool, arguments):
    """Ids an LLM passes end up in API URL paths; anything but plain id characters is refused (SSRF)."""
    env = await call_envelope(blendbus_client, tool, arguments)
    assert env["status"] == p.INVALID and env["job_id"] is None
