"""Waiters live in the replica that holds the caller's request; a job's end or progress reaches them
over the channel when it lands on another replica, and a waiter elsewhere reads the outcome from
the store. The scripts announce a job's end only when someone waits on it elsewhere (the job's
`waiter` replica, or `watched`): a caller served by the replica that got the reply is answered
without a message."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from ...protocol import FINAL_STATUSES, LOST, envelope
from ...waiter import JobWaiter
from ..base import Calls, JobStoreError, ProgressFn
from .connection import REPLICA_TTL_S, Connection, store_errors
from .jobs import RedisJobs

log = logging.getLogger(__name__)

CALL_LEASE_S = REPLICA_TTL_S
"""A call counts against its user's cap until its job ends, it is released, or its lease lapses; the
replica serving it renews the lease at every heartbeat, so a dead replica's calls lapse this soon."""


class RedisNotifier:
    """`Notifier` over the channel; calls in flight are a per-user sorted set of leases."""

    def __init__(self, link: Connection, jobs: RedisJobs) -> None:
        self.link, self.keys, self.jobs = link, link.keys, jobs
        self.waiter = JobWaiter()
        self._calls = Calls()
        """The calls this replica counted and still serves (their leases are renewed here)."""
        self._fetching: set[asyncio.Task[None]] = set()
        link.handlers.append(self._on_message)
        link.on_data_lost.append(self._all_lost)
        link.on_beat.append(self._renew_leases)

    def _all_lost(self) -> None:
        """Redis lost every job: whoever waits here for one is told it is lost, now."""
        for user_id, job_id in self.waiter.waited_on():
            self.waiter.deliver(user_id, job_id, envelope(LOST, job_id=job_id, error=(
                f"the Redis backend ({self.link.where}) lost its data (restarted empty, or flushed) while this"
                " job was in flight: its outcome is unknown; run it again")))

    def _on_message(self, fields: list[Any]) -> None:
        kind, *rest = fields
        if kind == "done" and rest[2] != self.link.replica and self.waiter.waiting_on(rest[0], rest[1]):
            self._soon(self._fetch(rest[0], rest[1]))
        elif kind == "progress" and rest[2] != self.link.replica:
            self.waiter.progress_soon(rest[0], rest[1], rest[3], rest[4], rest[5])

    def _soon(self, work: Any) -> None:
        """Run `work` in the background. A wake-up or a progress note is best effort (every wait re-reads the
        store), so its failure (Redis away) is logged here, never left for nobody to retrieve."""
        task = asyncio.ensure_future(work)
        self._fetching.add(task)
        task.add_done_callback(self._settled)

    def _settled(self, task: asyncio.Future[Any]) -> None:
        self._fetching.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("Redis backend: a note in the background failed: %s", task.exception())

    async def _fetch(self, user_id: str, job_id: str) -> None:
        try:
            job = await self.jobs.get(user_id, job_id)
        except JobStoreError as exc:
            log.warning("%s", exc)  # the waiter re-reads the store on its own later
            return
        if job is not None and job.status in FINAL_STATUSES:
            self.waiter.deliver(user_id, job_id, job.envelope())

    def register(self, user_id: str, job_id: str,
                 on_progress: ProgressFn | None = None) -> asyncio.Future[dict[str, Any]]:
        return self.waiter.register(user_id, job_id, on_progress)

    def release(self, user_id: str, job_id: str, fut: asyncio.Future[dict[str, Any]],
                on_progress: ProgressFn | None = None) -> None:
        self.waiter.release(user_id, job_id, fut, on_progress)

    @store_errors
    async def watch(self, user_id: str, job_id: str) -> None:
        await self.link.ready()
        key = self.keys.job(user_id, job_id)
        await self.link.run("watch", [key], [self.keys.user(user_id)])

    @store_errors
    async def deliver(self, user_id: str, job_id: str, outcome: dict[str, Any]) -> None:
        self.here(user_id, job_id, outcome)
        await self.link.notify("done", user_id, job_id, self.link.replica)

    def here(self, user_id: str, job_id: str, outcome: dict[str, Any]) -> None:
        """The job ended, and whoever waits elsewhere was told already: answer the waiters here."""
        self._calls.discard(user_id, job_id)
        self.waiter.deliver(user_id, job_id, outcome)

    @store_errors
    async def progress(self, user_id: str, job_id: str, fraction: float | None, message: str | None,
                       level: str | None = None) -> None:
        await self.link.notify("progress", user_id, job_id, self.link.replica, fraction, message, level)
        await self.waiter.progress(user_id, job_id, fraction, message, level)

    def progress_soon(self, user_id: str, job_id: str, fraction: float | None, message: str | None,
                      level: str | None = None) -> None:
        self._soon(self.progress(user_id, job_id, fraction, message, level))

    def progress_here(self, user_id: str, job_id: str, fraction: float | None, message: str | None,
                      level: str | None = None) -> None:
        """Progress whose callers elsewhere were told already: tell the ones here, without waiting for them."""
        self.waiter.progress_soon(user_id, job_id, fraction, message, level)

    # ---- calls in flight ---------------------------------------------------------------------
    @store_errors
    async def acquire(self, user_id: str, job_id: str, limit: int) -> bool:
        await self.link.ready()
        now = time.time()
        if not await self.link.run("acquire", [self.keys.calls(user_id)], [
                self.keys.user(user_id), job_id, limit, now + CALL_LEASE_S, now]):
            return False
        self.counting(user_id, job_id)
        return True

    def counting(self, user_id: str, job_id: str) -> None:
        """A script counted the call of `job_id` for this replica: renew its lease until it ends."""
        self._calls.add(user_id, job_id)

    @store_errors
    async def release_call(self, user_id: str, job_id: str, *, ended: bool = False) -> None:
        self._calls.discard(user_id, job_id)
        if not ended:
            await self.link.redis.zrem(self.keys.calls(user_id), job_id)

    async def _renew_leases(self) -> None:
        if not self._calls.by_user:
            return
        until = time.time() + CALL_LEASE_S
        async with self.link.redis.pipeline(transaction=False) as pipe:
            for user_id, calls in self._calls.by_user.items():
                pipe.zadd(self.keys.calls(user_id), dict.fromkeys(calls, until), xx=True)
            await pipe.execute()
