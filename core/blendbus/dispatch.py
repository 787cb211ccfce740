"""The life of a job, from a tool call to the peer's reply.

1. register a waiter on (user_id, job_id), so a reply is never early;
2. enqueue (`Backend.enqueue`, all or nothing): count the call, resolve the target peer
   (no_client / ambiguous_target / unknown_target / busy stop here), write the job record (status
   queued) and queue the payload on the peer, whose open poll, on whichever replica, returns it at once;
3. await the reply with the command's timeout. A timeout cancels the waiter, not the job: a late
   reply is stored and `blender_get_job` returns it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from . import protocol as p
from . import paging
from .asked import Asked
from .backends.backend import Backend, Enqueued
from .backends.base import PeerAuthError, ProgressFn
from .backends.snapshots import Job
from .limits import Limits, set_limit
from .peer_side import LOCAL_CREDENTIAL, PeerSide

__all__ = ["Hub", "Limits", "LOCAL_CREDENTIAL", "PeerAuthError", "set_limit"]

log = logging.getLogger(__name__)


class Detached(Exception):
    """A caller stopped waiting for its job on purpose (to ask its user something); the job carries on."""


class Hub(PeerSide):
    """Runs every dispatch through a backend's job store, peer registry and notifier: the caller's
    side is here (dispatch, follow, cancel, fetch), the peer's in `PeerSide`.

    It holds no state of its own but the embedded Blender's expected arrival: any replica's Hub can
    serve any request, because everything it knows comes from the backend."""

    def __init__(self, backend: Backend, limits: Limits | None = None) -> None:
        self.backend = backend
        self.jobs, self.peers, self.notifier = backend.jobs, backend.peers, backend.notifier
        self.asked = Asked(backend)
        """The question each job waits on, for the clients that poll for it (a 2026-07-28 task's)."""
        self.limits = limits or Limits()
        self._reaper: asyncio.Task[None] | None = None
        self._expected: dict[str, float] = {}
        """user_id -> until when a peer is expected to join (an embedded Blender starting)."""
        self._failures: dict[str, str] = {}
        """user_id -> why the peer this server starts for them (the embedded Blender) is not there."""
        self.closing = False
        """The server is shutting down: waits end now, and streams that follow the bus close."""

    # ---- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        """Run the liveness reaper on the current event loop (again, if the loop changed)."""
        loop = asyncio.get_running_loop()
        if self._reaper is None or self._reaper.get_loop() is not loop:
            self._reaper = loop.create_task(self._reap_forever())

    def expect_peer(self, user_id: str, within_s: float) -> None:
        """A peer is on its way (the embedded Blender is starting): a call that finds no peer on this
        user's bus waits for one for up to `within_s`, instead of answering `no_client` at once.
        `within_s=0` withdraws the expectation (the peer could not start)."""
        self._expected[user_id] = time.monotonic() + within_s

    def peer_failure(self, user_id: str) -> str | None:
        """Why the peer this server starts for `user_id` failed to start, while it has not started since."""
        return self._failures.get(user_id)

    async def peer_failed(self, user_id: str, reason: str) -> None:
        """The peer this server starts for `user_id` failed to start: calls answer `no_client` with the
        reason at once (not after waiting for it), and a call waiting for it now is woken to say so."""
        self._failures[user_id] = reason
        self._expected[user_id] = 0.0
        await self.peers.publish(user_id, "peer_failed", reason=reason)

    async def peer_started(self, user_id: str) -> None:
        self._failures.pop(user_id, None)

    def release_polls(self) -> None:
        """Shutting down: answer every open long poll and bus watch now, so no request is cut off
        mid-wait and shutdown does not wait for them."""
        self.closing = True
        self.peers.release_polls()

    async def stop(self) -> None:
        if self._reaper is not None:
            self._reaper.cancel()
            try:
                await self._reaper
            except asyncio.CancelledError:
                pass
            self._reaper = None

    # ---- LLM side --------------------------------------------------------------------------
    async def dispatch(
        self,
        user_id: str,
        payload: dict[str, Any],
        *,
        command: str,
        target_uuid: str | None,
        timeout: float,
        on_progress: ProgressFn | None = None,
        wait: bool = True,
        detach: asyncio.Future[Any] | None = None,
    ) -> dict[str, Any]:
        """Send one payload to a peer and wait for its reply (unless not `wait`: then it answers
        `queued` as soon as the job is queued); always returns an envelope. When `detach` is done
        first, the wait ends with `Detached` and the job carries on (`follow` waits for it again)."""
        job_id = payload.setdefault("job_id", p.new_job_id())
        # The waiter is registered before the job is queued: a reply is never early.
        fut = self.notifier.register(user_id, job_id, on_progress) if wait else None
        queued = None
        try:
            queued = await self._enqueue(user_id, payload, command, target_uuid, counted=wait)
            if queued.uuid is None or queued.status is not None:
                failure = self._failures.get(user_id) if queued.status == p.NO_CLIENT else None
                return p.envelope(
                    queued.status or p.NO_CLIENT, command=command, target_uuid=queued.uuid or target_uuid,
                    result={"candidates": list(queued.candidates)} if queued.status == p.AMBIGUOUS_TARGET else None,
                    error=f"no Blender peer is connected: {failure}" if failure else queued.error)
            if fut is None:
                return p.envelope(p.QUEUED, command=command, target_uuid=queued.uuid, job_id=job_id)
            try:
                return await self._wait(user_id, job_id, queued.uuid, fut, timeout, on_progress, detach)
            except TimeoutError:
                return await self._timed_out(user_id, job_id, command, queued.uuid, timeout)
            except asyncio.CancelledError:
                await asyncio.shield(self._cancel(user_id, queued.uuid, job_id))
                raise
        finally:
            if fut is not None:
                self.notifier.release(user_id, job_id, fut, on_progress)
                if queued is not None and queued.status is None:  # it counted: it stops now, if its job has not ended
                    await self.notifier.release_call(user_id, job_id, ended=fut.done() and not fut.cancelled())

    async def _enqueue(self, user_id: str, payload: dict[str, Any], command: str, target_uuid: str | None, *,
                       counted: bool) -> Enqueued:
        """`Backend.enqueue`; while an expected peer (the embedded Blender) starts, wait for it."""
        cursor = None
        while True:
            queued = await self.backend.enqueue(user_id, payload, command=command, target_uuid=target_uuid,
                                                max_calls=self.limits.max_calls_per_user,
                                                max_queued=self.limits.max_queued_per_peer, counted=counted)
            remaining = self._expected.get(user_id, 0.0) - time.monotonic()
            if queued.status != p.NO_CLIENT or remaining <= 0:
                return queued
            if cursor is None:
                cursor = (await self.peers.events_since(user_id, 1 << 62, 0))[1]
                continue  # a peer may have registered before the cursor was taken
            # Woken by the registration, or by the peer's failure to start (which withdraws the expectation).
            _, cursor = await self.peers.events_since(user_id, cursor, remaining)

    async def _timed_out(self, user_id: str, job_id: str, command: str, uuid: str, timeout: float) -> dict[str, Any]:
        """The caller stops waiting; the job does not stop. Its record keeps its real state (queued or
        running), so blender_get_job tells the truth until the reply lands."""
        job = await self.jobs.get(user_id, job_id, result=False)
        state = job.status if job else p.QUEUED
        env = job.envelope() if job else p.envelope(state, command=command, target_uuid=uuid, job_id=job_id)
        return {**env, "status": p.TIMEOUT, "error": (
            f"no reply from peer {uuid} within {timeout:g}s; the job is still {state} and"
            f" blender_get_job('{job_id}', wait_s=...) returns its result later")}

    async def follow(self, user_id: str, job_id: str, timeout: float, on_progress: ProgressFn, *,
                     detach: asyncio.Future[Any] | None = None,
                     before: Callable[[], Awaitable[None]] | None = None) -> dict[str, Any]:
        """Wait again, as its caller, for a job this caller left running (a 2026-07-28 call that returned
        to ask its user, input_required.py): its progress, log lines and questions reach `on_progress`.
        `before` runs once the wait is registered, so nothing the job says after it is missed."""
        fut = self.notifier.register(user_id, job_id, on_progress)
        try:
            await self.notifier.watch(user_id, job_id)
            if before is not None:
                await before()
            job = await self.jobs.get(user_id, job_id, result=False)
            if job is None:
                return p.envelope(p.FAILED, job_id=job_id, error=f"no job {job_id!r} for this user")
            if job.status in p.FINAL_STATUSES:
                return (await self.jobs.get(user_id, job_id) or job).envelope()
            try:
                return await self._wait(user_id, job_id, job.target_uuid or "", fut, timeout, on_progress, detach)
            except TimeoutError:
                return await self._timed_out(user_id, job_id, job.command, job.target_uuid or "", timeout)
        finally:
            self.notifier.release(user_id, job_id, fut, on_progress)

    async def _wait(self, user_id: str, job_id: str, target: str, fut: asyncio.Future[dict[str, Any]],
                    timeout: float, on_progress: ProgressFn | None,
                    detach: asyncio.Future[Any] | None = None) -> dict[str, Any]:
        """The reply, or TimeoutError after `timeout`, or `Detached` once `detach` is done. Every
        `progress_every_s` meanwhile the store is read: the caller is told where the job stands, and a
        job that ended is returned even if its wake-up was lost (a backend's notification crossing
        processes is best-effort)."""
        deadline = time.monotonic() + timeout
        ends = {fut} if detach is None else {fut, detach}
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError
            try:
                await asyncio.wait(ends, timeout=min(remaining, self.limits.progress_every_s),
                                   return_when=asyncio.FIRST_COMPLETED)
                if fut.done():
                    return fut.result()
                if detach is not None and detach.done():
                    raise Detached
                raise TimeoutError
            except TimeoutError:
                if time.monotonic() >= deadline:
                    continue
                job = await self.jobs.get(user_id, job_id, result=False)
                if job is not None and job.status in p.FINAL_STATUSES:
                    return (await self.jobs.get(user_id, job_id) or job).envelope()
                if on_progress is None:
                    continue
                state = job.status if job else p.QUEUED
                elapsed = timeout - (deadline - time.monotonic())
                await on_progress(None, f"{'running on' if state == p.RUNNING else state + ' for'} {target}"
                                        f" ({elapsed:.0f}s)")

    async def _cancel(self, user_id: str, uuid: str, job_id: str) -> None:
        """The caller gave up: drop a queued job, or tell the peer about a running one."""
        if await self.peers.withdraw(user_id, uuid, job_id):
            await self.jobs.advance(user_id, job_id, p.CANCELLED, error="cancelled by the caller before delivery")
        else:
            cancel = p.cancel(job_id)
            try:
                await self.peers.push(user_id, uuid, p.ack_key(cancel), cancel)
            except LookupError:
                pass  # the peer is gone: there is nothing left to interrupt
            await self.jobs.advance(user_id, job_id, p.CANCELLED, error="cancelled by the caller after delivery: the peer"
                                    " drops it if it has not started, or interrupts it at its next Python line")
        job = await self.jobs.get(user_id, job_id)
        if job is not None:
            await self.notifier.deliver(user_id, job_id, job.envelope())
        await self.peers.publish(user_id, "cancel", job_id=job_id, target_uuid=uuid)

    async def cancel_job(self, user_id: str, job_id: str) -> dict[str, Any]:
        """Stop a job on request: a queued one never runs, a running one is interrupted on its peer."""
        job = await self.jobs.get(user_id, job_id)
        if job is None:
            raise LookupError(f"no job {job_id!r} for this user")
        if job.status not in p.OPEN_STATUSES:
            raise ValueError(f"job {job_id!r} is already {job.status}: there is nothing to cancel")
        peers = {rec.uuid for rec in await self.peers.list(user_id)}
        if job.target_uuid not in peers:
            await self._fail(user_id, job_id, p.CANCELLED, f"cancelled; its peer {job.target_uuid} is gone")
        else:
            await self._cancel(user_id, job.target_uuid or "", job_id)
        return (await self.jobs.get(user_id, job_id) or job).envelope()

    async def get_job(self, user_id: str, job_id: str, wait_s: float = 0.0, *,
                      page: tuple[int, int] | None = None) -> dict[str, Any]:
        """A job's envelope; with wait_s, wait that long for it to finish first. With `page` (offset,
        length), its result is that page of the result text, read from the store alone (paging.py):
        a page costs the same whatever the size of the result."""
        fut = self.notifier.register(user_id, job_id)
        delivered = None
        try:
            job = await self.jobs.get(user_id, job_id, result=False)
            if job is None:
                return p.envelope(p.FAILED, job_id=job_id, error=f"no job {job_id!r} for this user")
            deadline = time.monotonic() + min(wait_s, self.limits.max_wait_s)
            if job.status not in p.FINAL_STATUSES and wait_s > 0:  # its end must reach this process
                await self.notifier.watch(user_id, job_id)
                job = await self.jobs.get(user_id, job_id, result=False) or job
            while job.status not in p.FINAL_STATUSES and (remaining := deadline - time.monotonic()) > 0:
                try:  # the job's end, as delivered; re-read now and then: a wake-up from another replica may be lost
                    delivered = await asyncio.wait_for(asyncio.shield(fut), min(remaining, 5.0))
                    break
                except TimeoutError:
                    pass
                job = await self.jobs.get(user_id, job_id, result=False) or job
        finally:
            self.notifier.release(user_id, job_id, fut)
        if page is not None:
            return await self._page(user_id, job, delivered, *page)
        if delivered is not None:
            return delivered
        return (await self.jobs.get(user_id, job_id) or job).envelope()

    async def _page(self, user_id: str, job: Job, delivered: dict[str, Any] | None, offset: int,
                    length: int) -> dict[str, Any]:
        env = (await self.jobs.get(user_id, job.job_id, result=False) or job).envelope()
        stored = await self.jobs.read_result(user_id, job.job_id, *paging.window(offset, length))
        if stored is not None:
            data, total, fmt = stored
            return paging.cut(env, data, max(offset, 0), total, fmt, offset, length)
        if delivered is not None and delivered.get("result") is not None:  # a result the store could not keep
            return paging.page(delivered, offset, length)
        return env

    async def list_peers(self, user_id: str) -> list[dict[str, Any]]:
        """The user's peers as `blender_list_clients` shows them."""
        described = []
        for rec in await self.peers.list(user_id):
            handed_out = len(await self.jobs.in_flight(user_id, rec.uuid)) - rec.queued
            described.append(rec.describe(running=max(0, handed_out)))
        return described
