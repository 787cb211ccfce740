"""The CLI as a user runs it: real processes, real HTTP, real stdio."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time

import pytest
from mcp import Client, StdioServerParameters

from blendbus.testing.kit import start_server

pytestmark = pytest.mark.anyio


def test_call_prints_the_envelope_and_sets_the_exit_code(tmp_path):
    proc, url = start_server(tmp_path)
    try:
        out = subprocess.run([sys.executable, "-m", "blendbus", "call", "blender_execute_code",
                              '{"code": "print(1)"}', "--server", url], capture_output=True, text=True, timeout=60)
        env = json.loads(out.stdout)
        assert env["status"] == "no_client" and out.returncode == 1
        bad = subprocess.run([sys.executable, "-m", "blendbus", "call", "blender_list_clients", "{not json",
                              "--server", url], capture_output=True, text=True, timeout=60)
        assert bad.returncode == 2 and "bad JSON" in bad.stderr
        ok = subprocess.run([sys.executable, "-m", "blendbus", "call", "blender_list_clients", "--server", url],
                            capture_output=True, text=True, timeout=60)
        assert ok.returncode == 0 and json.loads(ok.stdout) == {"clients": []}
    finally:
        proc.terminate()
        proc.wait(10)


async def test_a_stopping_server_ends_its_long_waits_and_streams_first(tmp_path):
    """SIGTERM with a status page following the bus, an App watching it and a client listening for
    changes: each is answered and closed at once, so shutdown never runs into uvicorn's graceful
    deadline (a traceback, requests cut off)."""
    import asyncio

    import httpx2

    from blendbus.client import connect
    from blendbus.testing.raw import ModernClient

    proc, url = start_server(tmp_path)
    try:
        async with connect(url) as client, httpx2.AsyncClient(timeout=60) as http:
            watching = asyncio.ensure_future(client.call_tool("blender_watch_bus", {"cursor": 1 << 40, "wait_s": 60}))
            frames: list[dict] = []
            listener = ModernClient(http, url, None, tasks=False)
            listening = asyncio.ensure_future(listener.listen({"resourceSubscriptions": ["blender://scene/objects"]}, frames,
                                                             request_id=77))
            async with http.stream("GET", url.replace("/mcp", "/status/api/events")) as stream:
                lines = stream.aiter_lines()
                assert (await anext(lines)).startswith("data: ")
                while not frames:  # the listen stream is acknowledged: open
                    await asyncio.sleep(0.05)
                await asyncio.sleep(1.0)  # the watch is open by now
                proc.terminate()
                rest = [line async for line in lines]  # the stream ends; it is not cut off
            watched = await asyncio.wait_for(watching, 30)
            await asyncio.wait_for(listening, 30)  # ended by the server, with its result
        assert not watched.is_error and watched.structured_content["events"] == []
        assert all(not line.startswith("data: ") or line.endswith("}") for line in rest)
        assert frames[-1].get("id") == 77 and "result" in frames[-1]
        assert proc.wait(30) == 0
    finally:
        proc.kill()
        stderr = proc.stderr.read()
    assert "Traceback" not in stderr and "graceful shutdown" not in stderr, stderr


def test_refuses_a_public_bind_without_tokens(tmp_path):
    out = subprocess.run([sys.executable, "-m", "blendbus", "serve", "--host", "0.0.0.0", "--port", "0",
                          "--state-dir", str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert out.returncode != 0 and "without --tokens" in out.stderr


async def test_stdio_serves_an_llm_client(tmp_path):
    params = StdioServerParameters(command=sys.executable, args=[
        "-m", "blendbus", "serve", "--stdio", "--port", "0", "--state-dir", str(tmp_path / "state")],
        env={**os.environ})
    for mode in ("legacy", "auto"):
        async with Client(params, mode=mode) as client:
            tools = {t.name: t for t in (await client.list_tools()).tools}
            assert "blender_get_scene_info" in tools and "blender_poll_jobs" not in tools
            result = await client.call_tool("blender_get_scene_info", {})
            assert result.is_error and result.structured_content["status"] == "no_client"


@pytest.mark.skipif(importlib.util.find_spec("bpy") is None, reason="bpy is not installed")
def test_embedded_blender_serves_and_comes_back_after_dying(tmp_path):
    """The README's main command: a server with its own headless Blender, restarted if it dies."""
    proc, url = start_server(tmp_path, "--embedded-blender")

    def call(tool: str, arguments: str = "{}") -> dict:
        out = subprocess.run([sys.executable, "-m", "blendbus", "call", tool, arguments, "--server", url],
                             capture_output=True, text=True, timeout=60)
        return json.loads(out.stdout)

    def wait_for_peer() -> dict:
        for _ in range(600):
            clients = call("blender_list_clients")["clients"]
            if clients:
                return clients[0]
            time.sleep(0.1)
        raise AssertionError("the embedded Blender never registered")

    try:
        said = "".join(proc.said)
        assert f"status page at {url.removesuffix('/mcp')}/" in said and "jobs are kept in" in said
        assert "pruned" not in said and "in-flight" not in said  # words, not counters
        peer = wait_for_peer()
        assert peer["client_uuid"] == "embedded-blender" and peer["blender_version"] == "5.0.1"
        gated = call("blender_search_polyhaven_assets", '{"asset_type": "hdris"}')
        assert "`blendbus serve --embedded-blender --embedded-set polyhaven.enabled=true`" in gated["error"]
        env = call("blender_execute_code", '{"code": "import bpy; print(len(bpy.data.objects))"}')
        assert env["status"] == "completed" and env["result"] == "3\n"
        # Kill the child Blender the hard way; the server starts another.
        children = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout.split()
        assert children
        for pid in children:
            os.kill(int(pid), signal.SIGKILL)
        time.sleep(6)  # past the peer grace period: the dead peer leaves the bus
        assert wait_for_peer()["client_uuid"] == "embedded-blender"
        assert call("blender_execute_code", '{"code": "print(2)"}')["result"] == "2\n"
    finally:
        proc.terminate()
        proc.wait(20)
    leftovers = subprocess.run(["pgrep", "-f", "embedded-peer"], capture_output=True, text=True).stdout.split()
    assert not leftovers, "the embedded Blender outlived its server"
