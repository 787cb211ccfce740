"""What a storage backend provides: the job store, the peer registry, and the notifier.

`dispatch.Hub` talks only to these three interfaces, composed in `backend.Backend`; what they hand
back (a job, a peer, a route, a bus event) is in `snapshots.py`. The in-process backend (`local.py`: SQLite jobs,
peers in memory) serves one process; the Redis backend (`redis/`) lets several `blendbus serve`
replicas act as one service. Both pass the same conformance tests (tests/backends/).

The records returned here are snapshots: nothing outside a backend changes a peer or a job in place.
"""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

from ..waiter import ProgressFn
from .snapshots import UNSET, BusEvent, Job, PeerRecord, Route

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


CLAIM_S = 10.0
"""How long a replica that reaps a lapsed peer has to end its jobs and unregister it (`Peers.expired`)
before another may claim it again."""


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
        """(user_id, uuid) of peers not heard from for the grace period, each claimed by exactly one
        caller (one replica reaps it) for `CLAIM_S`. The claimer ends the peer's jobs, then unregisters
        it, which releases the claim; a peer still registered when its claim lapses (the claimer died, or
        its store failed first) is claimed again, so its jobs end in the end."""

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
