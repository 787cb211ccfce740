"""The in-process backend: jobs in SQLite under the state dir, peers and waiters in this process.

It is the default, and what the embedded Blender and the tests use: one server process owns all the
state, so a poll is woken and a waiter resolved by setting an asyncio event, with no I/O at all.
"""

from __future__ import annotations

import asyncio
import hmac
import secrets
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Any

from ..protocol import CONTROL_KINDS
from ..waiter import JobWaiter
from .backend import Backend
from .base import CLAIM_S, Calls, PeerAuthError, ProgressFn
from .snapshots import BusEvent, PeerRecord, Route, route
from .records import SqliteRecords
from .sqlite import JobStore, SqliteJobs


@dataclass
class _Peer:
    uuid: str
    token: str
    credential: str
    instance: str | None
    info: dict[str, Any] = field(default_factory=dict)
    registered_at: float = field(default_factory=time.time)
    last_seen: float = field(default_factory=time.time)
    queue: OrderedDict[str, dict[str, Any]] = field(default_factory=OrderedDict)
    unacked: OrderedDict[str, dict[str, Any]] = field(default_factory=OrderedDict)
    polls: int = 0
    claimed_until: float = 0.0
    """Until when a reaper holds it (`Peers.expired`)."""
    wakeup: asyncio.Event = field(default_factory=asyncio.Event)

    def record(self, user_id: str) -> PeerRecord:
        return PeerRecord(uuid=self.uuid, user_id=user_id, token=self.token, credential=self.credential,
                          instance=self.instance, info=dict(self.info), registered_at=self.registered_at,
                          last_seen=self.last_seen, polling=self.polls > 0, queued=len(self.queue))


class _Bus:
    """One user's peers and event feed. Nothing in here is reachable from another user's bus."""

    def __init__(self, events: int = 1000) -> None:
        self.peers: dict[str, _Peer] = {}
        self.events: deque[BusEvent] = deque(maxlen=events)
        self.seq = 0
        self.event_added = asyncio.Event()


class LocalPeers:
    """`Peers` in this process's memory. Liveness: a peer with no open poll for `grace_s` has expired."""

    def __init__(self, grace_s: float) -> None:
        self.grace_s = grace_s
        self.claim_s = CLAIM_S
        self.closing = False
        self._buses: dict[str, _Bus] = {}

    def _bus(self, user_id: str) -> _Bus:
        bus = self._buses.get(user_id)
        if bus is None:
            bus = self._buses[user_id] = _Bus()
        return bus

    def _peer(self, user_id: str, uuid: str, token: str) -> _Peer:
        peer = self._bus(user_id).peers.get(uuid)
        if peer is None or not hmac.compare_digest(peer.token, token):
            raise PeerAuthError.of(uuid)
        return peer

    async def register(self, user_id: str, uuid: str, credential: str, instance: str | None,
                       info: dict[str, Any], *, max_peers: int) -> PeerRecord:
        bus = self._bus(user_id)
        peer = bus.peers.get(uuid)
        if peer is None:
            if len(bus.peers) >= max_peers:
                raise PermissionError(f"{len(bus.peers)} peers are registered on this bus, the most allowed;"
                                      " unregister one first")
            peer = bus.peers[uuid] = _Peer(uuid=uuid, token="", credential=credential, instance=instance)
        elif not (hmac.compare_digest(peer.credential, credential) and instance == peer.instance):
            raise PeerAuthError(
                f"peer uuid {uuid!r} is held by another live peer (another token or process); it is released when"
                f" that peer unregisters or has not polled for {self.grace_s:g}s. Use another uuid.")
        peer.info.update(info)
        peer.last_seen = time.time()
        peer.token = secrets.token_urlsafe(24)
        return peer.record(user_id)

    async def authenticate(self, user_id: str, uuid: str, token: str, *, touch: bool = False) -> PeerRecord:
        peer = self._peer(user_id, uuid, token)
        if touch:
            peer.last_seen = time.time()
        return peer.record(user_id)

    async def unregister(self, user_id: str, uuid: str) -> bool:
        peer = self._bus(user_id).peers.pop(uuid, None)
        if peer is not None:
            peer.wakeup.set()
        return peer is not None

    async def users(self) -> list[str]:
        return sorted(user for user, bus in self._buses.items() if bus.peers)

    async def list(self, user_id: str) -> list[PeerRecord]:
        return [peer.record(user_id) for peer in self._bus(user_id).peers.values()]

    async def note_handler(self, user_id: str, uuid: str, entry: dict[str, Any]) -> None:
        peer = self._bus(user_id).peers.get(uuid)
        if peer is not None:
            handlers = [h for h in peer.info.get("handlers", []) if h.get("package") != entry.get("package")]
            peer.info["handlers"] = [*handlers, entry]

    async def resolve(self, user_id: str, target_uuid: str | None) -> Route:
        peers = self._bus(user_id).peers
        return route(list(peers), target_uuid, lambda uuid: len(peers[uuid].queue) + len(peers[uuid].unacked))

    async def push(self, user_id: str, uuid: str, job_id: str, payload: dict[str, Any]) -> None:
        peer = self._bus(user_id).peers.get(uuid)
        if peer is None:
            raise LookupError(f"peer {uuid!r} left this bus before the job could be queued")
        peer.queue[job_id] = payload
        peer.wakeup.set()

    async def withdraw(self, user_id: str, uuid: str, job_id: str) -> bool:
        peer = self._bus(user_id).peers.get(uuid)
        return peer is not None and peer.queue.pop(job_id, None) is not None

    async def take(self, user_id: str, uuid: str, token: str, ack: list[str],
                   wait_s: float) -> tuple[list[dict[str, Any]], list[str]]:
        peer = self._peer(user_id, uuid, token)
        peer.polls += 1
        try:
            for job_id in ack:
                peer.unacked.pop(job_id, None)
            deadline = time.monotonic() + max(wait_s, 0.0)
            while not peer.queue and not peer.unacked and not self.closing:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._bus(user_id).peers.get(uuid) is not peer:
                    break
                peer.wakeup.clear()
                try:
                    await asyncio.wait_for(peer.wakeup.wait(), remaining)
                except TimeoutError:
                    break
            fresh = []
            while peer.queue:
                job_id, payload = peer.queue.popitem(last=False)
                peer.unacked[job_id] = payload
                if payload.get("message_type") not in CONTROL_KINDS:
                    fresh.append(job_id)
            return list(peer.unacked.values()), fresh
        finally:
            peer.polls -= 1
            peer.last_seen = time.time()

    async def expired(self) -> list[tuple[str, str]]:
        now = time.time()
        gone = []
        for user_id, bus in self._buses.items():
            for peer in list(bus.peers.values()):
                if peer.polls == 0 and now - peer.last_seen > self.grace_s and peer.claimed_until <= now:
                    peer.claimed_until = now + self.claim_s  # unregister drops it; until then it stays
                    gone.append((user_id, peer.uuid))
        return gone

    def release_polls(self) -> None:
        self.closing = True
        for bus in self._buses.values():
            bus.event_added.set()
            for peer in bus.peers.values():
                peer.wakeup.set()

    async def publish(self, user_id: str, kind: str, **data: Any) -> None:
        bus = self._bus(user_id)
        bus.seq += 1
        bus.events.append(BusEvent(bus.seq, kind, data))
        bus.event_added.set()
        bus.event_added = asyncio.Event()

    async def events_since(self, user_id: str, cursor: int, wait_s: float) -> tuple[list[BusEvent], int]:
        bus = self._bus(user_id)
        if bus.seq <= cursor and wait_s > 0 and not self.closing:
            added = bus.event_added
            try:
                await asyncio.wait_for(added.wait(), wait_s)
            except TimeoutError:
                pass
        return [e for e in bus.events if e.seq > cursor], bus.seq


class LocalNotifier:
    """`Notifier` for one process: the waiter's futures, and each user's calls in flight."""

    def __init__(self) -> None:
        self.waiter = JobWaiter()
        self._calls = Calls()

    def register(self, user_id: str, job_id: str, on_progress: ProgressFn | None = None) -> asyncio.Future[dict[str, Any]]:
        return self.waiter.register(user_id, job_id, on_progress)

    def release(self, user_id: str, job_id: str, fut: asyncio.Future[dict[str, Any]],
                on_progress: ProgressFn | None = None) -> None:
        self.waiter.release(user_id, job_id, fut, on_progress)

    async def watch(self, user_id: str, job_id: str) -> None:
        """Every waiter is in this process: `deliver` reaches it."""

    async def deliver(self, user_id: str, job_id: str, outcome: dict[str, Any]) -> None:
        self._calls.discard(user_id, job_id)  # the job ended: its call no longer counts
        self.waiter.deliver(user_id, job_id, outcome)

    async def progress(self, user_id: str, job_id: str, fraction: float | None, message: str | None,
                       level: str | None = None) -> None:
        await self.waiter.progress(user_id, job_id, fraction, message, level)

    def progress_soon(self, user_id: str, job_id: str, fraction: float | None, message: str | None,
                      level: str | None = None) -> None:
        self.waiter.progress_soon(user_id, job_id, fraction, message, level)

    async def acquire(self, user_id: str, job_id: str, limit: int) -> bool:
        if self._calls.count(user_id) >= limit:
            return False
        self._calls.add(user_id, job_id)
        return True

    async def release_call(self, user_id: str, job_id: str, *, ended: bool = False) -> None:
        self._calls.discard(user_id, job_id)


def local_backend(store: JobStore, grace_s: float) -> Backend:
    """The in-process backend over `store`."""
    return Backend(jobs=SqliteJobs(store), peers=LocalPeers(grace_s), notifier=LocalNotifier(), name="sqlite",
                   records=SqliteRecords(store.path))
