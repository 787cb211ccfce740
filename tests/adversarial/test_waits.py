"""Every wait ends when its job ends, however it ends (security round 3, #3).

The attack: `blender_get_job(wait_s=...)` stopped waiting only on `completed` or `failed`. On a job
that was cancelled or lost while it waited, its loop re-read the store without sleeping until the
deadline: eight such waits and one cancel held a replica at 98% CPU and 13,400 Redis ops/s. The
store reads are counted here, not timed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from blendbus import protocol as p
from blendbus.testing import call_envelope

pytestmark = pytest.mark.anyio


def count_reads(server: Any, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The job ids the store is asked for, from now on."""
    reads: list[str] = []
    get = server.hub.jobs.get

    async def counted(user_id: str, job_id: str) -> Any:
        reads.append(job_id)
        return await get(user_id, job_id)

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
    ended = {p.COMPLETED, p.FAILED, p.CANCELLED, p.LOST, p.TIMEOUT}
    assert p.FINAL_STATUSES == ended and not ended & set(p.OPEN_STATUSES)
    assert set(p.STATUS_RANK) == ended | set(p.OPEN_STATUSES)
