"""Faults with real processes: a peer killed mid-job, a disk-full job store, malformed peer replies."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import time

import httpx2
import pytest

from blendbus import protocol as p
from blendbus.client import ToolError, call, connect
from blendbus.backends.base import JobStoreError
from blendbus.testing import call_envelope, serve_http
from blendbus.testing.blender import blender_peer, needs_bpy

pytestmark = pytest.mark.anyio


@needs_bpy
async def test_a_blender_killed_mid_job_fails_the_job_fast(blendbus_server, tmp_path):
    async with serve_http(blendbus_server) as url:
        async with blender_peer(blendbus_server, url, tmp_path, "allow_code_execution=true") as proc:
            async with connect(url) as client:
                started = time.monotonic()
                job = asyncio.ensure_future(call_envelope(client, "blender_execute_code", {
                    "code": "import time\ntime.sleep(60)", "timeout_s": 120}))
                await asyncio.sleep(1.0)
                os.kill(proc.pid, signal.SIGKILL)
                env = await job
                assert env["status"] == p.LOST and "bpy-peer" in env["error"]
                assert time.monotonic() - started < 30  # the grace period, not the 120 s timeout
                later = await call_envelope(client, "blender_get_job", {"job_id": env["job_id"]})
                assert later["status"] == p.LOST


async def test_a_full_disk_is_a_clear_error_not_a_crash(blendbus_server, blendbus_peer_factory, blendbus_client):
    await blendbus_peer_factory()
    db = blendbus_server.hub.jobs.store._db  # the disk-full test fills the SQLite file on purpose
    db.execute(f"PRAGMA max_page_count = {db.execute('PRAGMA page_count').fetchone()[0] + 4}")
    blob = "x" * 50_000
    # A result that no longer fits still reaches its caller, with a warning that it was not stored.
    env = await call_envelope(blendbus_client, "blender_test_echo", {"value": blob})
    assert env["status"] == p.COMPLETED and env["result"] == {"echo": blob}, env["status"]
    assert "could not be stored" in env["warning"]
    # Once not even a job's row fits, the call is refused plainly and nothing is sent.
    for pad in (2000, 200, 20, 0):  # fill every last gap, big rows first
        with pytest.raises(sqlite3.OperationalError):
            for i in range(100_000):
                db.execute("INSERT INTO jobs (user_id, job_id, kind, command, status, created, updated)"
                           " VALUES ('filler', ?, 'k', 'c', 'completed', 0, 0)", (f"f{pad}-{i}" + "y" * pad,))
    result = await blendbus_client.call_tool("blender_test_noop", {})
    assert result.is_error and "could not record the job" in result.structured_content["error"]
    db.execute("PRAGMA max_page_count = 1073741823")
    assert (await call_envelope(blendbus_client, "blender_test_noop"))["status"] == p.COMPLETED
    assert issubclass(JobStoreError, RuntimeError)


async def test_malformed_peer_replies_are_refused_and_change_nothing(blendbus_server, blendbus_client):
    hub = blendbus_server.hub
    peer = await hub.register_peer("local", "odd")
    job = asyncio.ensure_future(call_envelope(blendbus_client, "blender_test_noop", {"timeout_s": 5}))
    await asyncio.sleep(0.05)
    [payload] = await hub.poll("local", "odd", peer.token, [], 0)
    job_id = payload["job_id"]
    base = {"client_uuid": "odd", "peer_token": peer.token, "job_id": job_id}
    for bad in ({"status": "done"}, {"status": 7}, {"status": "completed", "progress": 3},
                {"status": "completed", "error": ["not", "a", "string"]}, {"status": "completed", "extra": 1}):
        with pytest.raises(ToolError):
            await call(blendbus_client, "blender_job_update", {**base, **bad})
    assert (await hub.jobs.get("local", job_id)).status == p.RUNNING
    await call(blendbus_client, "blender_job_update", {**base, "status": "completed", "result": "fine"})
    assert (await job)["result"] == "fine"


@needs_bpy
def test_a_server_killed_mid_job_loses_nothing(tmp_path):
    """SIGKILL the server while a Blender peer runs a job; a restarted server gets the result."""
    import json
    import re
    import socket
    import subprocess
    import sys

    from blendbus.testing.blender import stop_process

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    def serve() -> subprocess.Popen:
        proc = subprocess.Popen([sys.executable, "-m", "blendbus", "serve", "--port", str(port), "--state-dir",
                                 str(tmp_path / "state")], stderr=subprocess.PIPE, text=True)
        for line in proc.stderr:
            if re.search(r"serving http://", line):
                return proc
        raise AssertionError("server did not start")

    def blendbus_call(tool: str, arguments: dict) -> dict:
        out = subprocess.run([sys.executable, "-m", "blendbus", "call", tool, json.dumps(arguments), "--server",
                              f"http://127.0.0.1:{port}/mcp"], capture_output=True, text=True, timeout=120)
        return json.loads(out.stdout)

    server = serve()
    peer = subprocess.Popen([sys.executable, "-m", "blendbus", "peer", "--server", f"http://127.0.0.1:{port}/mcp",
                             "--state-dir", str(tmp_path / "peer"), "--set", "allow_code_execution=true"],
                            stderr=subprocess.PIPE, text=True)
    try:
        assert any("connected" in line for line in peer.stderr)
        env = blendbus_call("blender_execute_code", {"code": "import time\ntime.sleep(6)\nprint('survived')",
                                                    "timeout_s": 1})
        assert env["status"] == p.TIMEOUT
        os.kill(server.pid, signal.SIGKILL)
        server.wait()
        server = serve()  # same port, same state dir
        late = blendbus_call("blender_get_job", {"job_id": env["job_id"]})
        assert late["status"] == p.LOST and "a late reply from the peer is still recorded" in late["error"]
        for _ in range(40):  # the peer re-registers, and its outbox delivers the late result
            late = blendbus_call("blender_get_job", {"job_id": env["job_id"], "wait_s": 1})
            if late["status"] == p.COMPLETED:
                break
            time.sleep(1)
        assert late["status"] == p.COMPLETED and late["result"] == "survived\n", late
        assert blendbus_call("blender_list_clients", {})["clients"][0]["blender_version"] == "5.0.1"
    finally:
        stop_process(peer, server)


async def test_a_malformed_image_fails_its_job_instead_of_every_later_read(blendbus_server, blendbus_client):
    """Security round 2, #9: a reply with a bad `_images` entry was stored, and every later read of
    that job failed with "Internal server error"."""
    hub = blendbus_server.hub
    peer = await hub.register_peer("local", "odd")
    bad_images = ([{"data": 5}], [{"data": "not base64!"}], [{"data": "aGk=", "mime_type": "text/html"}], "x")
    for images in bad_images:
        job = asyncio.ensure_future(call_envelope(blendbus_client, "blender_test_noop", {"timeout_s": 5}))
        await asyncio.sleep(0.05)
        [payload] = await hub.poll("local", "odd", peer.token, [], 0)
        job_id = payload["job_id"]
        await call(blendbus_client, "blender_job_update", {"client_uuid": "odd", "peer_token": peer.token,
                                                         "job_id": job_id, "status": "completed",
                                                         "result": {"_images": images}})
        env = await job
        assert env["status"] == p.FAILED and "malformed" in env["error"] and env["result"] is None
        again = await call_envelope(blendbus_client, "blender_get_job", {"job_id": job_id})
        assert again["status"] == p.FAILED and "_images" in again["error"]
        await hub.poll("local", "odd", peer.token, [job_id], 0)


async def test_tracebacks_name_packages_not_the_blender_machines_folders(blendbus_peer_factory, blendbus_client):
    """Security round 2, #10: tracebacks sent to the LLM carried absolute paths of the Blender machine."""
    import sys

    await blendbus_peer_factory()
    failed = await call_envelope(blendbus_client, "blender_test_fail", {"message": "boom"})
    script = await call_envelope(blendbus_client, "blender_execute_code", {"code": "import json\njson.loads('{')"})
    for env in (failed, script):
        assert env["status"] == p.FAILED
        assert sys.prefix not in env["error"] and sys.base_prefix not in env["error"] and "/work/" not in env["error"]
    assert "RuntimeError: boom" in failed["error"] and "blendbus/testing/handlers.py" in failed["error"]
    assert 'File "json/decoder.py"' in script["error"] and "<job_" in script["error"]


async def test_origins_are_explicit(blendbus_server):
    """Security round 2, #10: any http://localhost:<port> origin was accepted. Origins are now the
    server's own (its pages, on its own port) by default and exactly those configured besides."""
    body = (b'{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25",'
            b'"capabilities":{},"clientInfo":{"name":"t","version":"1"}}}')
    headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
    async with serve_http(blendbus_server) as url, httpx2.AsyncClient() as http:
        for origin in ("http://localhost:3000", "http://127.0.0.1:9", "null"):
            assert (await http.post(url, content=body, headers={**headers, "Origin": origin})).status_code == 403
        assert (await http.post(url, content=body, headers=headers)).status_code == 200  # non-browser clients
        port = url.split(":")[2].split("/")[0]
        for own in (f"http://127.0.0.1:{port}", f"http://localhost:{port}"):  # the server's own page
            assert (await http.post(url, content=body, headers={**headers, "Origin": own})).status_code == 200
    async with serve_http(blendbus_server, origins=["https://studio.example"]) as url, httpx2.AsyncClient() as http:
        allowed = await http.post(url, content=body, headers={**headers, "Origin": "https://studio.example"})
        other = await http.post(url, content=body, headers={**headers, "Origin": "https://studio.example.evil"})
        assert (allowed.status_code, other.status_code) == (200, 403)
