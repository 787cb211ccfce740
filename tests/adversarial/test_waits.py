"""Waits end when their job ends, when their caller leaves, and when their bound runs out; each user
holds only so many (security round 3, #3 and #4).

#3, the attack: `blender_get_job(wait_s=...)` stopped waiting only on `completed` or `failed`. On a job
that was cancelled or lost while it waited, its loop re-read the store without sleeping until the
deadline: eight such waits and one cancel held a replica at 98% CPU and 13,400 Redis ops/s. The
store reads are counted here, not timed.

#4, the attack: 2025-11-25 `tasks/result` calls had no cap and no deadline, and outlived the client
that made them: 2,000 abandoned ones kept 409 Redis ops/s going after the attacker disconnected.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from typing import Any

import httpx2
import pytest

from blendbus import protocol as p
from blendbus.server.builtin_tools import WAITS
from blendbus.client import connect
from blendbus.dispatch import Limits
from blendbus.testing import PythonPeer, call_envelope, make_server, serve_http
from blendbus.testing import plugin as testing_plugin
from blendbus.testing.raw import SessionClient

pytestmark = pytest.mark.anyio


async def call_envelope_over(http: httpx2.AsyncClient, url: str, token: str, tool: str,
                             arguments: dict[str, Any]) -> dict[str, Any]:
    """One tool call by a 2026-07-28 client of its own, as `token`: its envelope."""
    from blendbus.testing.raw import ModernClient

    return (await ModernClient(http, url, token, tasks=False).call(tool, arguments))["structuredContent"]


def count_reads(server: Any, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The job ids the store is asked for, from now on."""
    reads: list[str] = []
    get = server.hub.jobs.get

    async def counted(user_id: str, job_id: str, **how: Any) -> Any:
        reads.append(job_id)
        return await get(user_id, job_id, **how)

    monkeypatch.setattr(server.hub.jobs, "get", counted)
    return reads


async def _running_job(client: Any, seconds: float = 20) -> str:
    """A job that runs for `seconds` on the peer (checking for a cancel five times a second)."""
    queued = await call_envelope(client, "blender_send_message", {
        "payload": {"message_type": "command_dispatch", "command": "test_sleep",
                    "params": {"seconds": seconds, "steps": int(seconds * 5)}},
        "wait": False})
    job_id = queued["job_id"]
    for _ in range(200):
        if (await call_envelope(client, "blender_get_job", {"job_id": job_id}))["status"] == p.RUNNING:
            return job_id
        await asyncio.sleep(0.02)
    raise AssertionError("the job never ran")


async def _wait_through(client: Any, job_id: str, reads: list[str], end: Callable[[], Awaitable[Any]]) -> dict[str, Any]:
    waiting = asyncio.ensure_future(call_envelope(client, "blender_get_job", {"job_id": job_id, "wait_s": 30}))
    await asyncio.sleep(0.3)
    reads.clear()
    await end()
    env = await asyncio.wait_for(waiting, 25)
    assert reads.count(job_id) <= 10, f"the wait read its job {reads.count(job_id)} times after it ended"
    return env


async def test_a_wait_ends_when_its_job_is_cancelled(blendbus_server, blendbus_peer_factory, blendbus_client,
                                                     monkeypatch):
    await blendbus_peer_factory(uuid="sleeper")
    job_id = await _running_job(blendbus_client)
    reads = count_reads(blendbus_server, monkeypatch)
    env = await _wait_through(blendbus_client, job_id, reads,
                              lambda: call_envelope(blendbus_client, "blender_cancel_job", {"job_id": job_id}))
    assert env["status"] == p.CANCELLED


async def test_a_wait_ends_when_its_job_is_lost(blendbus_server, blendbus_peer_factory, blendbus_client, monkeypatch):
    peer = await blendbus_peer_factory(uuid="doomed")
    job_id = await _running_job(blendbus_client, seconds=5)  # its thread outlives the killed peer
    reads = count_reads(blendbus_server, monkeypatch)
    env = await _wait_through(blendbus_client, job_id, reads, peer.kill)  # lost after the liveness grace
    assert env["status"] == p.LOST and "doomed" in env["error"]


def test_every_status_a_job_ends_in_ends_a_wait():
    ended = {p.COMPLETED, p.FAILED, p.CONFLICT, p.CANCELLED, p.LOST, p.TIMEOUT}
    assert p.FINAL_STATUSES == ended and not ended & set(p.OPEN_STATUSES)
    assert set(p.STATUS_RANK) == ended | set(p.OPEN_STATUSES)


# ---- #4: abandoned 2025-11-25 tasks/result calls ------------------------------------------------------
@pytest.fixture
async def http_bus(tmp_path):
    """A server over HTTP with tokens for alice and bob, a Python peer on alice's bus, and an HTTP client."""
    server = make_server([("testing", testing_plugin)], state_dir=tmp_path / "state",
                         limits=Limits(peer_grace_s=1.5, poll_wait_s=5.0, max_waits_per_user=3,
                                       max_task_result_wait_s=30))
    async with serve_http(server, tokens={"a": "alice", "b": "bob"}) as url:
        async with PythonPeer(lambda: connect(url, "a"), concurrency=2), httpx2.AsyncClient(timeout=30) as http:
            yield server, url, http


async def _until(condition: Callable[[], bool], what: str, within_s: float = 10.0) -> None:
    for _ in range(int(within_s / 0.05)):
        if condition():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{what} did not happen within {within_s}s")


async def test_abandoned_task_results_are_capped_and_end_with_their_client(http_bus, monkeypatch):
    server, url, http = http_bus
    alice = await SessionClient(http, url, "a").open()
    created = await alice("tools/call", {"name": "blender_test_sleep", "arguments": {"seconds": 20, "steps": 100},
                                         "task": {}})
    task_id = created["result"]["task"]["taskId"]
    waited: list[str] = []  # every wait on the job, and each re-read within one, passes through Hub.get_job
    get_job = server.hub.get_job

    async def counted(user_id: str, job_id: str, wait_s: float = 0.0, **how: Any) -> dict[str, Any]:
        waited.append(job_id)
        return await get_job(user_id, job_id, wait_s, **how)

    monkeypatch.setattr(server.hub, "get_job", counted)
    async with AsyncExitStack() as held:
        for _ in range(3):
            await held.enter_async_context(alice.streaming("tasks/result", {"taskId": task_id}))
        await _until(lambda: server.waits.held("alice", WAITS) == 3, "three waits")
        refused = await alice("tasks/result", {"taskId": task_id})  # a fourth wait of alice's
        assert refused["error"]["code"] == -32000 and "3 long waits" in refused["error"]["message"]
        busy = await call_envelope_over(http, url, "a", "blender_get_job", {"job_id": task_id, "wait_s": 5})
        assert busy["status"] == p.BUSY  # the cap is alice's, over every kind of long wait
        bob = await call_envelope_over(http, url, "b", "blender_get_job", {"job_id": "j-none", "wait_s": 0.1})
        assert bob["status"] == p.FAILED and "no job" in bob["error"]  # bob is not held back by alice
    # The three clients hung up: their waits end, and nothing keeps reading the job for them.
    await _until(lambda: server.waits.held("alice", WAITS) == 0, "the abandoned waits ending")
    waited.clear()
    await asyncio.sleep(1.5)  # a tasks/result of old waited again in a loop, 60 s at a time, until its task ended
    assert waited == []
    async with alice.streaming("tasks/result", {"taskId": task_id}):  # a session that ends ends its waits
        await _until(lambda: server.waits.held("alice", WAITS) == 1, "a wait")
        assert await alice.close() == 200
        await _until(lambda: server.waits.held("alice", WAITS) == 0, "the session's wait ending")
    await call_envelope_over(http, url, "a", "blender_cancel_job", {"job_id": task_id})


async def test_a_task_result_waits_a_bounded_time(tmp_path):
    server = make_server([("testing", testing_plugin)], state_dir=tmp_path / "state",
                         limits=Limits(peer_grace_s=1.5, poll_wait_s=5.0, max_task_result_wait_s=0.5))
    async with serve_http(server, tokens={"a": "alice"}) as url:
        async with PythonPeer(lambda: connect(url, "a")), httpx2.AsyncClient(timeout=30) as http:
            alice = await SessionClient(http, url, "a").open()
            created = await alice("tools/call", {"name": "blender_test_sleep",
                                                 "arguments": {"seconds": 3, "steps": 15}, "task": {}})
            task_id = created["result"]["task"]["taskId"]
            answer = await alice("tasks/result", {"taskId": task_id})
            assert answer["error"]["code"] == -32000 and "still working after 0.5s" in answer["error"]["message"]
            for _ in range(100):  # asked again once it ended, it answers the result
                answer = await alice("tasks/result", {"taskId": task_id})
                if "result" in answer:
                    break
            assert answer["result"]["structuredContent"]["result"] == 3


async def test_a_nonsense_tasks_list_cursor_is_invalid_params_and_one_log_line(http_bus, caplog):
    server, url, http = http_bus
    alice = await SessionClient(http, url, "a").open()
    for cursor in ("nan", "inf", "-inf", "1e999", "x" * 90):
        answer = await alice("tasks/list", {"cursor": cursor})
        assert answer["error"]["code"] == -32602 and "is not one tasks/list gave" in answer["error"]["message"]
    assert "Traceback" not in caplog.text
