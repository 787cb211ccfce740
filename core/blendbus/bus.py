"""Per-user buses: which peers are connected, and the queue of payloads each one has yet to take.

Delivery is a long poll (docs/peer-protocol.md): a peer keeps one `blender_poll_jobs` call open
and the server answers it the moment a payload is queued. A payload handed to a poll stays
"unacked" until the peer's next poll acknowledges it; until then every poll hands it out again,
so a response lost on a dropped stream is redelivered rather than lost (the peer de-duplicates).
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Any

from .protocol import AMBIGUOUS_TARGET, CANCEL, NO_CLIENT, UNKNOWN_TARGET


@dataclass
class Peer:
    """A Blender peer as the server knows it."""

    uuid: str
    user_id: str
    client_type: str = "blender"
    is_persistent: bool = False
    capabilities: dict[str, Any] = field(default_factory=dict)
    blender_version: str | None = None
    handlers: list[dict[str, Any]] = field(default_factory=list)
    gates: dict[str, bool] = field(default_factory=dict)
    credential: str = "local"
    """Which bearer token registered this peer (its digest); only that token may re-register the uuid."""
    instance: str | None = None
    """Random per peer process: only the same process may re-register the uuid while the peer lives."""
    registered_at: float = field(default_factory=time.time)
    last_seen: float = field(default_factory=time.monotonic)
    token: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    queue: OrderedDict[str, dict[str, Any]] = field(default_factory=OrderedDict)
    unacked: OrderedDict[str, dict[str, Any]] = field(default_factory=OrderedDict)
    running: set[str] = field(default_factory=set)
    polls: int = 0
    wakeup: asyncio.Event = field(default_factory=asyncio.Event)

    def describe(self) -> dict[str, Any]:
        return {
            "client_uuid": self.uuid,
            "client_type": self.client_type,
            "is_persistent": self.is_persistent,
            "capabilities": self.capabilities,
            "blender_version": self.blender_version,
            "handlers": self.handlers,
            "gates": self.gates,
            "registered_at": self.registered_at,
            "last_seen_s_ago": round(max(0.0, time.monotonic() - self.last_seen), 3) if not self.polls else 0.0,
            "polling": self.polls > 0,
            "queued": len(self.queue),
            "running": len(self.running),
        }

    @property
    def backlog(self) -> int:
        return len(self.queue) + len(self.unacked)

    def push(self, job_id: str, payload: dict[str, Any]) -> None:
        self.queue[job_id] = payload
        self.wakeup.set()

    def withdraw(self, job_id: str) -> bool:
        """Take a job back before the peer took it; returns whether it was still queued."""
        return self.queue.pop(job_id, None) is not None

    def take(self, ack: list[str]) -> tuple[list[dict[str, Any]], list[str]]:
        """Everything this poll should return, and the job ids handed out for the first time."""
        for job_id in ack:
            self.unacked.pop(job_id, None)
        fresh = []
        while self.queue:
            job_id, payload = self.queue.popitem(last=False)
            self.unacked[job_id] = payload
            if payload.get("message_type") != CANCEL:
                self.running.add(job_id)
                fresh.append(job_id)
        return list(self.unacked.values()), fresh


@dataclass
class BusEvent:
    seq: int
    kind: str
    data: dict[str, Any]


class Bus:
    """One user's peers. Nothing in here is ever reachable from another user's bus."""

    def __init__(self, user_id: str, *, events: int = 1000) -> None:
        self.user_id = user_id
        self.peers: dict[str, Peer] = {}
        self._events: deque[BusEvent] = deque(maxlen=events)
        self._seq = 0
        self._event_added = asyncio.Event()

    def resolve(self, target_uuid: str | None) -> tuple[Peer | None, str | None, str]:
        """Pick the peer for a dispatch: (peer, None, "") or (None, status, error)."""
        if target_uuid:
            peer = self.peers.get(target_uuid)
            if peer is None:
                known = ", ".join(sorted(self.peers)) or "none"
                return None, UNKNOWN_TARGET, f"no peer {target_uuid!r} on this bus (connected: {known})"
            return peer, None, ""
        if not self.peers:
            return None, NO_CLIENT, "no Blender peer is connected; start one with `blendbus peer --server URL`"
        if len(self.peers) > 1:
            names = ", ".join(sorted(self.peers))
            return None, AMBIGUOUS_TARGET, f"{len(self.peers)} peers are connected ({names}); pass target_uuid"
        return next(iter(self.peers.values())), None, ""

    @property
    def seq(self) -> int:
        """The number of the latest event (a cursor for `events_since`)."""
        return self._seq

    def publish(self, kind: str, **data: Any) -> None:
        """Record a bus event for `_message_bus` observers."""
        self._seq += 1
        self._events.append(BusEvent(self._seq, kind, data))
        self._event_added.set()
        self._event_added = asyncio.Event()

    async def events_since(self, cursor: int, wait_s: float) -> tuple[list[BusEvent], int]:
        """Events after `cursor`, waiting up to wait_s for the first one."""
        if self._seq <= cursor and wait_s > 0:
            added = self._event_added
            try:
                await asyncio.wait_for(added.wait(), wait_s)
            except TimeoutError:
                pass
        events = [e for e in self._events if e.seq > cursor]
        return events, self._seq


class Buses:
    """All users' buses, created on first use."""

    def __init__(self) -> None:
        self._buses: dict[str, Bus] = {}

    def __call__(self, user_id: str) -> Bus:
        bus = self._buses.get(user_id)
        if bus is None:
            bus = self._buses[user_id] = Bus(user_id)
        return bus

    def all_peers(self) -> list[Peer]:
        return [p for bus in self._buses.values() for p in bus.peers.values()]
