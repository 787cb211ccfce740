"""What a storage backend provides: the job store, the peer registry, and the notifier.

`dispatch.Hub` talks only to these three interfaces. The in-process backend (`local.py`: SQLite jobs,
peers in memory) serves one process; the Redis backend (`redis/`) lets several `blendbus serve`
replicas act as one service. Both pass the same conformance tests (tests/backends/).

The records returned here are snapshots: nothing outside a backend changes a peer or a job in place.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from ..paging import JSON, TEXT
from ..protocol import (AMBIGUOUS_TARGET, BUSY, DISPATCHED, JOB_UPDATE, LOST, NO_CLIENT, RUNNING, UNKNOWN_TARGET,
                        envelope)
from ..waiter import ProgressFn

log = logging.getLogger(__name__)
UNSET: Any = object()
"""`result` not given (a status change that keeps the stored result)."""


DEFAULT_MAX_AGE_S = 7 * 24 * 3600
"""How long a finished job is kept, on every backend (`serve --limit`s of the store)."""
DEFAULT_MAX_JOBS_PER_USER = 10_000
DEFAULT_MAX_BYTES_PER_USER = 512 * 1024**2
DEFAULT_MAX_JOBS = 50_000
"""Jobs the whole store keeps across all users; past it, users above their fair share give way."""
DEFAULT_MAX_BYTES = 2 * 1024**3
ROW_OVERHEAD_BYTES = 64
"""Counted for every job besides its text, by every backend alike: its numbers, and the store's bookkeeping."""


class JobStoreError(RuntimeError):
    """The store could not record a job (disk full, read-only state dir, Redis unreachable, ...)."""


class DuplicateJob(ValueError):
    """This user already has a job with that id."""


class OverQuota(Exception):
    """A new job would take its user past their caps with what cannot make room: jobs in flight, whose
    payloads wait for Blender. The message says how much is held; the caller gets `busy`."""

    @classmethod
    def of_user(cls, jobs: int, size: int, max_jobs: int, max_bytes: int) -> OverQuota:
        return cls(f"your jobs hold {jobs} jobs and {size} bytes on this bus (payloads waiting for Blender, results"
                   f" kept), and the most allowed is {max_jobs} jobs and {max_bytes} bytes; wait for jobs in flight"
                   " to finish, or cancel some")

    @classmethod
    def of_store(cls, jobs: int, size: int) -> OverQuota:
        return cls(f"the job store is full ({jobs} jobs, {size} bytes, mostly in flight); retry when jobs finish")


class PeerAuthError(PermissionError):
    """A peer operation with a wrong uuid/token pair; the peer should re-register."""

    @classmethod
    def of(cls, uuid: str) -> PeerAuthError:
        return cls(f"peer {uuid!r} is not registered with that token; call blender_register_client again")


def unknown_job(job_id: str) -> LookupError:
    """A peer's reply for a job nobody sent."""
    return LookupError(f"no job {job_id!r} was sent on this bus")


def others_job(job_id: str) -> PermissionError:
    """A peer's reply for a job sent to another peer."""
    return PermissionError(f"job {job_id!r} was sent to another peer; only its target may update it")


def running_on(uuid: str) -> str:
    """The progress message of a job its peer just took."""
    return f"running on {uuid}"


@dataclass(frozen=True)
class Job:
    user_id: str
    job_id: str
    kind: str
    command: str
    target_uuid: str | None
    status: str
    result_data: str | bytes | None
    """The result text as stored (paging.result_text, in `result_format`): None when it was not read, or
    there is none. The stores keep results this way so that a page is read without decoding the rest."""
    error: str
    progress: float | None
    message: str | None
    created: float
    updated: float
    result_format: str = JSON
    result_bytes: int | None = None
    """How long the stored result text is, in UTF-8 bytes (None: no result)."""
    scene: dict[str, Any] | None = None
    """The peer's account of its scene with its reply (protocol.SCENE_FIELD): `{revision, changes?}`."""

    @property
    def result(self) -> Any:
        if self.result_data is None:
            return None
        if self.result_format == TEXT:
            return self.result_data.decode() if isinstance(self.result_data, bytes) else self.result_data
        return json.loads(self.result_data)

    def envelope(self, result: Any = UNSET) -> dict[str, Any]:
        """The job as a tool result. Pass `result` when it is at hand already decoded: a large result
        is then not decoded a second time from its stored JSON."""
        env = envelope(
            self.status,
            command=self.command,
            target_uuid=self.target_uuid,
            job_id=self.job_id,
            result=self.result if result is UNSET else result,
            error=self.error,
        )
        if self.progress is not None:
            env["progress"] = {"fraction": self.progress, "message": self.message or ""}
        if self.scene is not None:
            env.update((k, self.scene[k]) for k in ("revision", "changes") if k in self.scene)
        return env


@dataclass(frozen=True)
class PeerRecord:
    """A Blender peer as the registry knows it, at the moment it was read."""

    uuid: str
    user_id: str
    token: str
    credential: str
    """Which bearer token registered this peer (its digest); only that token may re-register the uuid."""
    instance: str | None
    """Random per peer process: only the same process may re-register the uuid while the peer lives."""
    info: dict[str, Any] = field(default_factory=dict)
    """What the peer said of itself: client_type, is_persistent, capabilities, blender_version, handlers, gates."""
    registered_at: float = 0.0
    last_seen: float = 0.0
    """Wall-clock time of the peer's last poll or update (every replica agrees on it)."""
    polling: bool = False
    queued: int = 0
    """Payloads waiting for the peer's next poll."""

    def describe(self, running: int) -> dict[str, Any]:
        """The peer as `blender_list_clients` shows it; `running`: its jobs handed out and not finished."""
        return {
            "client_uuid": self.uuid,
            "client_type": self.info.get("client_type", "blender"),
            "is_persistent": self.info.get("is_persistent", False),
            "capabilities": self.info.get("capabilities", {}),
            "blender_version": self.info.get("blender_version"),
            "handlers": self.info.get("handlers", []),
            "gates": self.info.get("gates", {}),
            "registered_at": self.registered_at,
            "last_seen_s_ago": 0.0 if self.polling else round(max(0.0, time.time() - self.last_seen), 3),
            "polling": self.polling,
            "queued": self.queued,
            "running": running,
        }


@dataclass(frozen=True)
class Route:
    """Where a dispatch goes: `uuid` and its backlog, or a status (no_client, ambiguous_target,
    unknown_target) with an error and the peers there are."""

    uuid: str | None
    status: str | None = None
    error: str = ""
    candidates: tuple[str, ...] = ()
    backlog: int = 0


def route(peers: list[str], target_uuid: str | None, backlog: Callable[[str], int]) -> Route:
    """Target resolution, the same for every backend: `peers` are the user's peer uuids, `backlog(uuid)`
    the chosen one's queue length."""
    if target_uuid:
        if target_uuid not in peers:
            known = ", ".join(sorted(peers)) or "none"
            return Route(None, UNKNOWN_TARGET, f"no peer {target_uuid!r} on this bus (connected: {known})")
        return Route(target_uuid, backlog=backlog(target_uuid))
    if not peers:
        return Route(None, NO_CLIENT, "no Blender peer is connected; start one with `blendbus peer --server URL`")
    if len(peers) > 1:
        names = sorted(peers)
        return Route(None, AMBIGUOUS_TARGET, f"{len(names)} peers are connected ({', '.join(names)}); pass target_uuid",
                     candidates=tuple(names))
    return Route(peers[0], backlog=backlog(peers[0]))


@dataclass(frozen=True)
class BusEvent:
    seq: int
    kind: str
    data: dict[str, Any]


class Jobs(Protocol):
    """Jobs keyed by (user_id, job_id). A job is recorded before it is routed; its status only moves
    forward (protocol.STATUS_RANK), so duplicate or late replies never undo a final answer. Every write
    keeps each user within the retention caps."""

    max_age_s: float

    async def create(self, user_id: str, job_id: str, *, kind: str, command: str, target_uuid: str | None,
                     payload_bytes: int = 0) -> None:
        """Record a new queued job; DuplicateJob if the id is taken. The job's payload (`payload_bytes`,
        which waits in its peer's queue) counts against the user's bytes until the job ends: OverQuota
        when it cannot fit, finished jobs having made what room they can."""

    async def advance(self, user_id: str, job_id: str, status: str, *, result: Any = UNSET,
                      error: str | None = None, scene: dict[str, Any] | None = None) -> bool:
        """Move a job to `status` if that is forward (an atomic compare-and-set); returns whether it moved.
        `scene` is the peer's account of its scene, kept with the job (Job.scene)."""

    async def set_progress(self, user_id: str, job_id: str, fraction: float | None, message: str | None) -> None: ...

    async def get(self, user_id: str, job_id: str, *, result: bool = True) -> Job | None:
        """The job; with `result=False` without its result (`result_data` None, `result_bytes` still
        set): a status check must not read a 64 MB result."""

    async def read_result(self, user_id: str, job_id: str, offset: int, length: int) -> tuple[bytes, int, str] | None:
        """Bytes [offset, offset + length) of the job's stored result text, the text's whole length, and its
        format (TEXT or JSON); reading only those bytes. None when the job or its result is not there."""

    async def recent(self, user_id: str, limit: int, before: float | None = None) -> list[Job]:
        """A user's newest jobs (created before `before`, if given), newest first, without their
        results (`result_data` is None: a listing must not load 64 MB results)."""

    async def in_flight(self, user_id: str, target_uuid: str) -> list[str]:
        """Jobs sent to that peer and not finished."""

    async def recover(self) -> int:
        """On start: in-flight jobs nobody can answer any more become lost; returns how many."""

    async def prune(self) -> int:
        """Retention: drop finished jobs past the age and size caps; returns how many."""

    async def usage(self, user_id: str) -> tuple[int, int]:
        """(jobs, stored bytes) of one user, as the caps count them."""

    async def users(self) -> list[str]:
        """Every user with jobs kept, sorted: for the operator's view of the whole service."""

    async def close(self) -> None: ...


class Peers(Protocol):
    """Per-user registries of peers with a queue each, their liveness, and the `_message_bus` feed.

    A payload taken by a poll stays unacked until a later poll acknowledges it; until then every poll
    hands it out again, so a response lost on a dropped stream is redelivered, never dropped."""

    async def register(self, user_id: str, uuid: str, credential: str, instance: str | None,
                       info: dict[str, Any], *, max_peers: int) -> PeerRecord:
        """Add a peer, or refresh one that re-registers (its queue is kept) with a new token.
        PeerAuthError if a live peer of another credential or process holds the uuid; PermissionError
        when the user already has `max_peers`."""

    async def authenticate(self, user_id: str, uuid: str, token: str, *, touch: bool = False) -> PeerRecord:
        """The peer behind (uuid, token), or PeerAuthError; with `touch`, it was heard from (a reply):
        alive for the grace period at least."""

    async def unregister(self, user_id: str, uuid: str) -> bool: ...

    async def list(self, user_id: str) -> list[PeerRecord]: ...

    async def users(self) -> list[str]:
        """Every user with a registered peer, sorted: for the operator's view of the whole service."""

    async def note_handler(self, user_id: str, uuid: str, entry: dict[str, Any]) -> None:
        """The peer synced a handler package: list it among the peer's handlers."""

    async def resolve(self, user_id: str, target_uuid: str | None) -> Route: ...

    async def push(self, user_id: str, uuid: str, job_id: str, payload: dict[str, Any]) -> None:
        """Queue a payload and wake the peer's open poll, wherever it is held."""

    async def withdraw(self, user_id: str, uuid: str, job_id: str) -> bool:
        """Take a payload back before the peer took it; returns whether it was still queued."""

    async def take(self, user_id: str, uuid: str, token: str, ack: list[str],
                   wait_s: float) -> tuple[list[dict[str, Any]], list[str]]:
        """A long poll: acknowledge `ack`, then return every unacked payload (waiting up to wait_s for
        one) and the ids handed out for the first time. The peer counts as alive while it polls."""

    async def expired(self) -> list[tuple[str, str]]:
        """(user_id, uuid) of peers not heard from for the grace period, each handed to exactly one
        caller (one replica reaps it)."""

    def release_polls(self) -> None:
        """Shutting down: answer this process's open polls now."""

    async def publish(self, user_id: str, kind: str, **data: Any) -> None:
        """Add an event to the user's `_message_bus` feed."""

    async def events_since(self, user_id: str, cursor: int, wait_s: float) -> tuple[list[BusEvent], int]:
        """Events after `cursor`, waiting up to wait_s for the first (not at all after
        `release_polls`); and the new cursor."""


class Notifier(Protocol):
    """Wakes the callers waiting on a job, in whichever process they wait, and counts each user's
    dispatches in flight across all processes."""

    def register(self, user_id: str, job_id: str, on_progress: ProgressFn | None = None) -> asyncio.Future[dict[str, Any]]:
        """A future for the job's outcome, registered before the job is sent (a reply is never early)."""

    def release(self, user_id: str, job_id: str, fut: asyncio.Future[dict[str, Any]],
                on_progress: ProgressFn | None = None) -> None: ...

    async def watch(self, user_id: str, job_id: str) -> None:
        """A future for the job is registered here by someone other than its caller (blender_get_job
        waits): make sure its end reaches this process, wherever the reply lands."""

    async def deliver(self, user_id: str, job_id: str, outcome: dict[str, Any]) -> None:
        """The job ended: resolve its waiters here with `outcome`, and elsewhere from the store."""

    async def progress(self, user_id: str, job_id: str, fraction: float | None, message: str | None,
                       level: str | None = None) -> None:
        """Tell the job's callers, wherever they wait, of its progress, or (`level`) a log line it wrote."""

    def progress_soon(self, user_id: str, job_id: str, fraction: float | None, message: str | None,
                      level: str | None = None) -> None:
        """`progress` without waiting for it (a peer's poll must not wait on callers' streams)."""

    async def acquire(self, user_id: str, job_id: str, limit: int) -> bool:
        """Count the call of `job_id` among its user's calls in flight, unless `limit` are already;
        returns whether it did. A call stops counting when its job ends, or on `release_call`; one
        counted by a replica that died stops counting soon after (Redis: a lease this replica renews)."""

    async def release_call(self, user_id: str, job_id: str, *, ended: bool = False) -> None:
        """The call of `job_id` stopped waiting. `ended`: because its job ended, which stopped it counting
        already (no write needed). Calling it twice is harmless."""


class Calls:
    """Calls in flight by user, as one process knows them (a `Notifier`'s bookkeeping)."""

    def __init__(self) -> None:
        self.by_user: dict[str, set[str]] = {}

    def count(self, user_id: str) -> int:
        return len(self.by_user.get(user_id, ()))

    def add(self, user_id: str, job_id: str) -> None:
        self.by_user.setdefault(user_id, set()).add(job_id)

    def discard(self, user_id: str, job_id: str) -> None:
        calls = self.by_user.get(user_id)
        if calls is not None:
            calls.discard(job_id)
            if not calls:
                del self.by_user[user_id]


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


class Records(Protocol):
    """Small expiring records the built-in authorization server keeps (oauth/server.py): registered
    clients, sign-ins in progress, codes, refresh tokens, its signing key; and the question each job
    waits on (asked.py), the request-state key (server/input_required.py). Shared by the replicas of a
    shared backend, so a sign-in begun on one completes on another. Values are JSON objects; `kind`
    and `key` are plain strings."""

    async def put(self, kind: str, key: str, value: dict[str, Any], ttl_s: float | None = None) -> None: ...

    async def get(self, kind: str, key: str) -> dict[str, Any] | None: ...

    async def take(self, kind: str, key: str) -> dict[str, Any] | None:
        """Get and delete, atomically: of two replicas redeeming one code, only one gets it."""
        ...

    async def put_first(self, kind: str, key: str, value: dict[str, Any]) -> dict[str, Any]:
        """Store `value` unless the key holds one already; what the key holds after."""
        ...


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
