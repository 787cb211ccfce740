"""Faults with real processes: a peer killed mid-job, a disk-full job store, malformed peer replies."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import time

import pytest

from blendbus import protocol as p
from blendbus.client import ToolError, call, connect
from blendbus.jobs import JobStoreError
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
    db = blendbus_server.hub.store._db
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
    peer = hub.register_peer("local", "odd")
    job = asyncio.ensure_future(call_envelope(blendbus_client, "blender_test_noop", {"timeout_s": 5}))
    await asyncio.sleep(0.05)
    await hub.poll("local", "odd", peer.token, [], 0)
    job_id = next(iter(peer.running))
    base = {"client_uuid": "odd", "peer_token": peer.token, "job_id": job_id}
    for bad in ({"status": "done"}, {"status": 7}, {"status": "completed", "progress": 3},
                {"status": "completed", "error": ["not", "a", "string"]}, {"status": "completed", "extra": 1}):
        with pytest.raises(ToolError):
            await call(blendbus_client, "blender_job_update", {**base, **bad})
    assert hub.store.get("local", job_id).status == p.RUNNING
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
        late = blendbus_call("blender_get_job", {"job_id": env["job_id"], "wait_s": 40})
        assert late["status"] == p.COMPLETED and late["result"] == "survived\n", late
        assert blendbus_call("blender_list_clients", {})["clients"][0]["blender_version"] == "5.0.1"
    finally:
        stop_process(peer, server)
