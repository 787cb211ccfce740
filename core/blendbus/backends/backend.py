"""A server's stateful parts together: the job store, the peer registry and the notifier (base.py's
interfaces), and the operations of a dispatch that span them (enqueue, a peer's take, its reply).

They are composed here from the parts, so that a new backend needs only the three interfaces; a
backend whose every step is a round trip (Redis) overrides each operation with one.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any

from ..protocol import BUSY, DISPATCHED, JOB_UPDATE, LOST, NO_CLIENT, RUNNING, envelope
from .base import (
    Jobs,
    JobStoreError,
    Notifier,
    OverQuota,
    Peers,
    Records,
    others_job,
    unknown_job,
)
from .snapshots import Route

log = logging.getLogger(__name__)


def running_on(uuid: str) -> str:
    """The progress message of a job its peer just took."""
    return f"running on {uuid}"


@dataclass(frozen=True)
class Enqueued:
    """What `Backend.enqueue` did: the job is queued on `uuid`, or it is not, with the routing status
    (no_client, ambiguous_target, unknown_target, busy) and why."""

    uuid: str | None
    status: str | None = None
    error: str = ""
    candidates: tuple[str, ...] = ()

    @classmethod
    def refused(cls, found: Route) -> Enqueued:
        return cls(None, found.status or NO_CLIENT, found.error, found.candidates)

    @classmethod
    def too_many_calls(cls, limit: int) -> Enqueued:
        return cls(None, BUSY, f"{limit} calls of yours are already in flight; retry when some finish")

    @classmethod
    def backlog(cls, uuid: str, backlog: int) -> Enqueued:
        return cls(uuid, BUSY, f"peer {uuid} already has {backlog} queued jobs; retry later")


@dataclass(frozen=True)
class Replied:
    """What `Backend.reply` did with a peer's word on its job."""

    accepted: bool
    status: str
    """The job's status now."""
    persisted: bool = True
    """False: the store could not keep the reply; whoever waited here got it anyway, with a warning."""


def unstored(status: str, job_id: str, uuid: str, result: Any, error: str, problem: Exception,
             command: str | None = None) -> dict[str, Any]:
    """The outcome delivered when the store could not keep a reply (full, or down): the waiting caller
    still gets it, told that blender_get_job will not find it."""
    log.error("%s", problem)
    env = envelope(status, command=command, target_uuid=uuid, job_id=job_id, result=result, error=error)
    env["warning"] = f"this result could not be stored ({problem}); blender_get_job will not find it"
    return env


@dataclass
class Backend:
    """The three stateful parts of a server, built together by `open_backend`, and the operations of a
    dispatch that span them. Those are composed here from the parts; a backend whose every step is a
    round trip (Redis) does each in one."""

    jobs: Jobs
    peers: Peers
    notifier: Notifier
    name: str
    shared: bool = False
    """True when other processes share this state (replicas): a restart must not fail their jobs."""
    start: Callable[[], Awaitable[None]] | None = None
    """Connect and listen before serving (a backend also starts itself on first use)."""
    records: Records | None = None
    """Where the built-in authorization server keeps its state (every backend `open_backend` builds has it)."""

    async def enqueue(self, user_id: str, payload: dict[str, Any], *, command: str, target_uuid: str | None,
                      max_calls: int, max_queued: int, counted: bool) -> Enqueued:
        """Route `payload` to a peer, record its job (queued) and queue it, with a `dispatch` event on the
        user's feed. `counted`: the caller waits for the reply, so the call counts against `max_calls`
        (`Notifier.acquire`) until its job ends or `release_call`. DuplicateJob if the job id is taken."""
        job_id = payload["job_id"]
        if counted and not await self.notifier.acquire(user_id, job_id, max_calls):
            return Enqueued.too_many_calls(max_calls)
        try:
            queued = await self._enqueue(user_id, payload, command, target_uuid, max_queued)
        except BaseException:
            if counted:
                await self.notifier.release_call(user_id, job_id)
            raise
        if queued.status is not None and counted:
            await self.notifier.release_call(user_id, job_id)
        return queued

    async def _enqueue(self, user_id: str, payload: dict[str, Any], command: str, target_uuid: str | None,
                       max_queued: int) -> Enqueued:
        found = await self.peers.resolve(user_id, target_uuid)
        if found.uuid is None:
            return Enqueued.refused(found)
        uuid, job_id = found.uuid, payload["job_id"]
        if found.backlog >= max_queued:
            return Enqueued.backlog(uuid, found.backlog)
        try:
            await self.jobs.create(user_id, job_id, kind=payload["message_type"], command=command, target_uuid=uuid,
                                   payload_bytes=len(compact(payload)))
        except OverQuota as exc:
            return Enqueued(uuid, BUSY, str(exc))
        try:
            await self.peers.push(user_id, uuid, job_id, payload)
        except LookupError as exc:  # the peer left between resolve and push
            await self.jobs.advance(user_id, job_id, LOST, error=str(exc))
            raise
        await self.peers.publish(user_id, DISPATCHED, job_id=job_id, target_uuid=uuid,
                                 message_type=payload["message_type"], command=command)
        return Enqueued(uuid)

    async def take(self, user_id: str, uuid: str, token: str, ack: list[str],
                   wait_s: float) -> tuple[list[dict[str, Any]], list[str]]:
        """A peer's long poll (`Peers.take`), with the jobs handed out for the first time marked running
        and their callers told where they run."""
        payloads, fresh = await self.peers.take(user_id, uuid, token, ack, wait_s)
        for job_id in fresh:
            try:
                await self.jobs.advance(user_id, job_id, RUNNING)
            except JobStoreError as exc:  # bookkeeping only: delivery must not depend on it
                log.error("%s", exc)
            self.notifier.progress_soon(user_id, job_id, None, running_on(uuid))
        return payloads, fresh

    async def reply(self, user_id: str, uuid: str, token: str, job_id: str, status: str, *, result: Any = None,
                    error: str = "", progress: float | None = None, message: str | None = None,
                    scene: dict[str, Any] | None = None, level: str | None = None) -> Replied:
        """A peer's word on one of its own jobs: progress (`running`; with `level`, a log line for its
        callers, which is passed on and not kept), or its end, which moves the job
        forward only and answers whoever waits for it, with a `job_update` event. PeerAuthError for a
        wrong token, LookupError for a job not sent on this bus, PermissionError for another peer's job."""
        await self.peers.authenticate(user_id, uuid, token, touch=True)
        job = await self.jobs.get(user_id, job_id, result=False)
        if job is None:
            raise unknown_job(job_id)
        if job.target_uuid != uuid:
            raise others_job(job_id)
        if status == RUNNING:
            if level is None:
                await self.jobs.set_progress(user_id, job_id, progress, message)
            await self.notifier.progress(user_id, job_id, progress, message, level)
            return Replied(True, job.status)
        try:
            moved = await self.jobs.advance(user_id, job_id, status, result=result, error=error, scene=scene)
        except JobStoreError as exc:
            outcome = unstored(status, job_id, uuid, result, error, exc, job.command)
            await self.notifier.deliver(user_id, job_id, outcome)
            return Replied(True, status, persisted=False)
        if not moved:  # already final (cancelled, timed out, lost): the first word stands
            current = await self.jobs.get(user_id, job_id, result=False)
            return Replied(False, current.status if current else status)
        # What the store now holds, built from the reply in hand: a large result stays one copy.
        await self.notifier.deliver(user_id, job_id,
                                    replace(job, status=status, error=error, scene=scene).envelope(result=result))
        await self.peers.publish(user_id, JOB_UPDATE, job_id=job_id, status=status, client_uuid=uuid)
        return Replied(True, status)


def compact(payload: dict[str, Any]) -> str:
    """A payload as it waits for Blender (its length is what it weighs against the user's bytes)."""
    return json.dumps(payload, separators=(",", ":"))
