"""Several `blendbus serve` processes on one real Redis act as one service: peers, jobs, the event
feed and the limits are shared; a replica killed mid-job loses nothing; peers fail over."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import AsyncExitStack
from pathlib import Path

import pytest

from blendbus import protocol as p
from blendbus.client import connect
from blendbus.testing import PythonPeer, call_envelope
from blendbus.testing.blender import needs_bpy, stop_process
from blendbus.testing.replicas import Replica, nginx_in_front, start_replica

pytestmark = pytest.mark.anyio


@pytest.fixture
def replicas(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[list[Replica]]:
    """Three replicas on one Redis, or (parametrized `cluster`) on a Redis Cluster of three masters."""
    store = request.getfixturevalue("blendbus_redis_cluster" if getattr(request, "param", "") == "cluster"
                                    else "blendbus_redis")
    started = [start_replica(store, tmp_path / f"r{n}") for n in range(3)]
    yield started
    for replica in started:
        replica.stop()


async def _wait_for_peers(url: str, uuids: set[str], token: str | None = None, timeout: float = 30) -> None:
    async with connect(url, token) as client:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            listed = await call_envelope(client, "blender_list_clients")
            if uuids <= {c["client_uuid"] for c in listed["clients"]}:
                return
            await asyncio.sleep(0.1)
    raise AssertionError(f"peers {uuids} did not appear on {url}")


ON_BOTH = pytest.mark.parametrize("replicas", ["redis", "cluster"], indirect=True)


@ON_BOTH
async def test_every_replica_serves_every_request(replicas: list[Replica]) -> None:
    one, two, three = replicas
    near = await PythonPeer(lambda: connect(one.url), uuid="near").start()
    far = await PythonPeer(lambda: connect(three.url), uuid="far").start()
    try:
        async with connect(two.url) as client:
            listed = await call_envelope(client, "blender_list_clients")
            assert sorted(c["client_uuid"] for c in listed["clients"]) == ["far", "near"]
            assert all(c["polling"] for c in listed["clients"])
            ambiguous = await call_envelope(client, "blender_execute_code", {"code": "print(1)"})
            assert ambiguous["status"] == p.AMBIGUOUS_TARGET and ambiguous["result"]["candidates"] == ["far", "near"]
            for target in ("near", "far"):  # the caller is on replica two, the peers on one and three
                env = await call_envelope(client, "blender_execute_code",
                                          {"code": f"print('{target}')", "target_uuid": target})
                assert env["status"] == p.COMPLETED and env["result"].strip() == target
        async with connect(three.url) as other:
            again = await call_envelope(other, "blender_get_job", {"job_id": env["job_id"]})
            assert again["status"] == p.COMPLETED and again["result"] == env["result"]
            feed = await call_envelope(other, "blender_watch_bus", {"cursor": 0})
            kinds = [e["kind"] for e in feed["events"]]
            assert kinds.count("register") == 2 and kinds.count("dispatch") == 2 and kinds.count("job_update") == 2
    finally:
        await near.kill()
        await far.kill()


@ON_BOTH
async def test_a_replica_killed_mid_job_loses_nothing(replicas: list[Replica]) -> None:
    one, two, three = replicas
    peer = await PythonPeer(lambda: connect(f"{one.url},{two.url}"), uuid="survivor", concurrency=1).start()
    try:
        async with connect(three.url) as client:
            slow = asyncio.ensure_future(call_envelope(client, "blender_execute_code", {
                "code": "import time\ntime.sleep(2.5)\nprint('slow done')", "timeout_s": 60}))
            await asyncio.sleep(0.8)
            one.kill()  # the replica holding the peer's poll dies while the job runs on the peer
            queued = await call_envelope(client, "blender_execute_code",  # queued while the peer is away
                                         {"code": "print('queued done')", "timeout_s": 60})
            done = await slow
            assert done["status"] == p.COMPLETED and done["result"].strip() == "slow done"
            assert queued["status"] == p.COMPLETED and queued["result"].strip() == "queued done"
            assert peer.link.registrations >= 2  # it re-registered on replica two, same uuid, queue kept
        async with connect(two.url) as other:
            fetched = await call_envelope(other, "blender_get_job", {"job_id": done["job_id"]})
            assert fetched["status"] == p.COMPLETED
            listed = await call_envelope(other, "blender_list_clients")
            assert [c["client_uuid"] for c in listed["clients"]] == ["survivor"]
    finally:
        await peer.kill()


async def test_a_peer_whose_replica_died_under_its_idle_poll_is_free_to_return(replicas: list[Replica]) -> None:
    """The replica holding an idle peer's poll dies, then the peer's process: its next process takes the
    same uuid on another replica within the poll lease and the grace, not once the 300 s poll the dead
    replica vouched for would have ended."""
    one, two, _ = replicas
    first = await PythonPeer(lambda: connect(one.url), uuid="phoenix").start()
    await asyncio.sleep(4)  # idle past half the grace (5 s): replica one vouches for the poll it holds
    one.kill()
    await first.kill()
    again = await PythonPeer(lambda: connect(two.url), uuid="phoenix").start(timeout=60)
    try:
        async with connect(two.url) as client:
            env = await call_envelope(client, "blender_execute_code", {"code": "print('back')"})
            assert env["status"] == p.COMPLETED and env["result"].strip() == "back"
    finally:
        await again.kill()


async def test_users_are_isolated_across_replicas(blendbus_redis: str, tmp_path: Path) -> None:
    tokens = tmp_path / "tokens.json"
    tokens.write_text(json.dumps({"alice-token": "alice", "bob-token": "bob"}))
    started = [start_replica(blendbus_redis, tmp_path / f"r{n}", "--tokens", str(tokens)) for n in range(2)]
    one, two = started
    peer = await PythonPeer(lambda: connect(one.url, "alice-token"), uuid="alices").start()
    try:
        async with connect(two.url, "alice-token") as alice, connect(two.url, "bob-token") as bob:
            env = await call_envelope(alice, "blender_execute_code", {"code": "print('mine')"})
            assert env["status"] == p.COMPLETED
            assert (await call_envelope(bob, "blender_list_clients"))["clients"] == []
            assert (await call_envelope(bob, "blender_execute_code", {"code": "print(1)"}))["status"] == p.NO_CLIENT
            stolen = await call_envelope(bob, "blender_get_job", {"job_id": env["job_id"]})
            assert stolen["status"] == p.FAILED and stolen["result"] is None and "no job" in stolen["error"]
            assert (await call_envelope(bob, "blender_watch_bus", {"cursor": 0}))["events"] == []
            hijack = await bob.call_tool("blender_register_client", {"client_uuid": "alices", "instance": "x"})
            assert not hijack.is_error  # bob gets his own "alices" on his own bus; alice's is untouched
            assert [c["client_uuid"] for c in (await call_envelope(alice, "blender_list_clients"))["clients"]] == ["alices"]
            assert (await call_envelope(alice, "blender_execute_code", {"code": "print(2)"}))["status"] == p.COMPLETED
    finally:
        await peer.kill()
        for replica in started:
            replica.stop()


async def test_calls_per_user_are_limited_across_replicas(blendbus_redis: str, tmp_path: Path) -> None:
    """`max_calls_per_user` (256 by default) counts the calls held on every replica together."""
    started = [start_replica(blendbus_redis, tmp_path / f"r{n}") for n in range(2)]
    try:
        async with AsyncExitStack() as stack:
            # One HTTP client holds at most 100 connections: 64 waiting calls per client, 4 clients.
            callers = [await stack.enter_async_context(connect(started[i % 2].url)) for i in range(4)]
            peer = await stack.enter_async_context(connect(started[0].url))
            reg = await call_envelope(peer, "blender_register_client", {"client_uuid": "stalled", "instance": "i"})

            all_in_flight, done = asyncio.Event(), asyncio.Event()

            async def poll_without_answering() -> None:  # alive, so its jobs stay in flight
                while not done.is_set():  # each poll ends by itself within 1 s: none is cut off mid-answer
                    got = await call_envelope(peer, "blender_poll_jobs", {
                        "client_uuid": "stalled", "peer_token": reg["peer_token"], "wait_s": 1})
                    if len(got["payloads"]) == 256:
                        all_in_flight.set()

            keepalive = asyncio.ensure_future(poll_without_answering())
            waiting = [asyncio.ensure_future(call_envelope(callers[i % 4], "blender_execute_code",
                                                           {"code": "print(1)", "timeout_s": 15}))
                       for i in range(256)]
            await asyncio.wait_for(all_in_flight.wait(), 10)
            for replica in started:
                async with connect(replica.url) as late:
                    busy = await call_envelope(late, "blender_execute_code", {"code": "print(1)", "timeout_s": 1})
                    assert busy["status"] == p.BUSY and "already in flight" in busy["error"]
            outcomes = await asyncio.gather(*waiting)
            assert {o["status"] for o in outcomes} == {p.TIMEOUT}
            freed = await call_envelope(callers[1], "blender_execute_code", {"code": "print(1)", "timeout_s": 0.5})
            assert freed["status"] == p.TIMEOUT  # accepted again once the others ended
            done.set()
            await keepalive  # a poll cancelled mid-flight would get its answer on a closed stream
    finally:
        for replica in started:
            replica.stop()


@needs_bpy
async def test_a_blender_peer_fails_over_to_the_next_replica(replicas: list[Replica], tmp_path: Path) -> None:
    one, two, _ = replicas
    proc = subprocess.Popen([sys.executable, "-m", "blendbus", "peer", "--server", f"{one.url},{two.url}",
                             "--uuid", "bpy-failover", "--set", "allow_code_execution=true",
                             "--state-dir", str(tmp_path / "peer")],
                            stdout=open(tmp_path / "peer.log", "wb"), stderr=subprocess.STDOUT)
    try:
        await _wait_for_peers(two.url, {"bpy-failover"}, timeout=60)
        one.kill()
        async with connect(two.url) as client:
            deadline = time.monotonic() + 30
            while True:  # the peer notices, re-registers on replica two, and takes calls again
                env = await call_envelope(client, "blender_execute_code",
                                          {"code": "import bpy; print(bpy.app.version_string)", "timeout_s": 10})
                if env["status"] == p.COMPLETED or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.5)
            assert env["status"] == p.COMPLETED and env["result"].startswith("5.0"), (
                env, (tmp_path / "peer.log").read_text())
    finally:
        stop_process(proc)


async def test_replicas_behind_nginx(replicas: list[Replica], tmp_path: Path) -> None:
    """docs/deploy/nginx.conf in front of two replicas: peers and callers use one URL; a replica dies."""
    one, two, _ = replicas
    with nginx_in_front([one, two], tmp_path) as url:
        peer = await PythonPeer(lambda: connect(url), uuid="via-nginx").start()
        try:
            async with connect(url) as client:
                env = await call_envelope(client, "blender_execute_code", {"code": "print('proxied')"})
                assert env["status"] == p.COMPLETED and env["result"].strip() == "proxied"
            one.kill()
            deadline = time.monotonic() + 30
            while True:  # nginx moves everyone to the live replica; the peer re-registers there
                try:
                    async with connect(url) as client:
                        env = await call_envelope(client, "blender_execute_code", {"code": "print('still')",
                                                                                   "timeout_s": 5})
                    if env["status"] == p.COMPLETED:
                        break
                except Exception:  # noqa: BLE001 - the connection that was on the dead replica
                    pass
                assert time.monotonic() < deadline, env
                await asyncio.sleep(0.5)
        finally:
            await peer.kill()
