"""What only the Redis backend has to handle: state shared by replicas that die independently."""

from __future__ import annotations

import asyncio
import json

import pytest

from blendbus import protocol as p
from blendbus.backends import open_backend

pytestmark = pytest.mark.anyio


async def test_a_job_whose_replica_died_before_queuing_it_becomes_lost(blendbus_redis: str) -> None:
    backend = open_backend(blendbus_redis, state_dir=None, grace_s=5)
    try:
        await backend.peers.register("u", "peer", "c", "i", {}, max_peers=9)
        for job_id in ("orphan", "waiting"):  # both recorded; only "waiting" reached the peer's queue
            await backend.jobs.create("u", job_id, kind=p.COMMAND_DISPATCH, command="c", target_uuid="peer")
        await backend.peers.push("u", "peer", "waiting", p.command_dispatch("waiting", "c", {}))
        assert await backend.jobs.prune() == 0
        assert (await backend.jobs.get("u", "orphan")).status == p.QUEUED  # not yet: it may be on its way
        backend.jobs.orphan_after_s = 0  # what a minute later looks like
        await backend.jobs.prune()
        orphan = await backend.jobs.get("u", "orphan")
        assert orphan.status == p.LOST and "stopped before queuing it" in orphan.error
        assert (await backend.jobs.get("u", "waiting")).status == p.QUEUED  # queued jobs wait as long as needed
        assert await backend.jobs.in_flight("u", "peer") == ["waiting"]
    finally:
        await backend.jobs.close()


def test_a_replica_without_redis_says_so(tmp_path) -> None:
    import socket
    import subprocess
    import sys

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    run = subprocess.run([sys.executable, "-m", "blendbus", "serve", "--port", "0", "--state-dir", str(tmp_path),
                          "--backend", f"redis://127.0.0.1:{closed}/0"], capture_output=True, text=True, timeout=60)
    assert run.returncode == 2
    assert f"the Redis backend (127.0.0.1:{closed}/0) does not answer" in run.stderr and "--backend" in run.stderr


async def test_a_redis_that_lost_its_data_is_noticed_at_once(tmp_path) -> None:
    """A Redis without persistence restarts empty, or is flushed (security round 3, a weak spot): peers
    re-register at once instead of at the end of their long poll, and jobs in flight answer `lost`."""
    import redis

    from blendbus.client import connect
    from blendbus.dispatch import Limits
    from blendbus.testing import PythonPeer, call_envelope, eventually, make_server, serve_http
    from blendbus.testing import plugin as testing_plugin
    from blendbus.testing.redis import redis_server

    with redis_server(own=True) as url:  # its own: it is flushed
        server = make_server([("testing", testing_plugin)], limits=Limits(peer_grace_s=1.5, poll_wait_s=120),
                             backend=url)
        try:
            async with serve_http(server) as mcp_url:
                peer = await PythonPeer(lambda: connect(mcp_url), uuid="survivor", poll_wait_s=120).start()
                try:
                    async with connect(mcp_url) as client:
                        slow = asyncio.ensure_future(call_envelope(client, "blender_test_sleep",
                                                                   {"seconds": 3, "steps": 15}))
                        await eventually(lambda: _running(server), "the job running")
                        redis.Redis.from_url(url).flushall()
                        lost = await asyncio.wait_for(slow, 10)
                        assert lost["status"] == p.LOST and "lost its data" in lost["error"], lost
                        await eventually(lambda: _registered(server, "survivor"), "the peer registered again", 10)
                        again = await call_envelope(client, "blender_test_echo", {"value": "after"})
                        assert again["status"] == p.COMPLETED and again["result"] == {"echo": "after"}
                finally:
                    await peer.kill()
        finally:
            await server.hub.jobs.close()


async def _running(server) -> bool:
    return any(job.status == p.RUNNING for job in await server.hub.jobs.recent("local", 10))


async def _registered(server, uuid: str) -> bool:
    from blendbus.testing import peer_uuids

    return uuid in await peer_uuids(server)


async def test_a_redis_that_goes_away_and_comes_back_empty_is_survived(tmp_path) -> None:
    """Redis stops for 30 s, then comes back with nothing (no persistence): calls meanwhile answer a
    clear error promptly, never hang; afterwards the peer registers again and calls go on, with no
    replica restarted."""
    import shutil
    import subprocess
    import time

    from blendbus.client import connect
    from blendbus.dispatch import Limits
    from blendbus.testing import PythonPeer, call_envelope, eventually, make_server, serve_http
    from blendbus.testing import plugin as testing_plugin
    from blendbus.testing.redis import _free_port, _wait_for

    port = _free_port()

    def start() -> subprocess.Popen:
        proc = subprocess.Popen([shutil.which("redis-server") or "redis-server", "--port", str(port), "--bind",
                                 "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(tmp_path)],
                                stdout=subprocess.DEVNULL)
        _wait_for(port)
        return proc

    redis_proc = start()
    server = make_server([("testing", testing_plugin)], limits=Limits(peer_grace_s=1.5, poll_wait_s=5),
                         backend=f"redis://127.0.0.1:{port}/0")
    try:
        async with serve_http(server) as mcp_url:
            peer = await PythonPeer(lambda: connect(mcp_url), uuid="patient", poll_wait_s=5).start()
            try:
                async with connect(mcp_url) as client:
                    assert (await call_envelope(client, "blender_test_echo", {"value": 1}))["status"] == p.COMPLETED
                    redis_proc.kill()
                    redis_proc.wait(10)
                    back_at = time.monotonic() + 30  # an outage of half a minute, not a blip
                    while time.monotonic() < back_at:  # every call meanwhile answers, saying why, never hangs
                        started = time.monotonic()
                        down = await asyncio.wait_for(call_envelope(client, "blender_test_echo", {"value": 2}), 30)
                        assert "Redis backend" in json.dumps(down) and time.monotonic() - started < 25, down
                        await asyncio.sleep(5)
                    redis_proc = start()  # back, and empty

                    async def works() -> bool:
                        env = await call_envelope(client, "blender_test_echo", {"value": "after", "timeout_s": 5})
                        return env["status"] == p.COMPLETED

                    await eventually(works, "calls through the Redis that came back", 60)
            finally:
                await peer.kill()
    finally:
        redis_proc.kill()
        redis_proc.wait(10)
        await server.hub.jobs.close()
