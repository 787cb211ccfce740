"""`Peers` in Redis: registrations, queues, liveness and the `_message_bus` feed, shared by every replica.

A peer's queue is a list of job ids plus a hash of payloads; a poll moves ids to a handed-out list
in one script, and only the peer's acknowledgement removes them, so a payload is handed out again
until the peer confirms it, whichever replica it polls. Liveness is a sorted set of wall-clock
deadlines shared by all users, which any replica's reaper claims atomically.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import secrets
import time
from collections import Counter
from typing import Any

from redis.exceptions import RedisError

from ...protocol import CONTROL_KINDS
from ..base import CLAIM_S, PeerAuthError
from ..snapshots import BusEvent, PeerRecord, Route, route
from .connection import REPLICA_TTL_S, Connection, store_errors
from .keys import decoded

log = logging.getLogger(__name__)

EVENTS_KEPT = 1000
"""Events kept per user in the `_message_bus` stream (approximately: Redis trims in whole nodes)."""
INFO_PREFIX = "i:"
"""Peer hash fields holding what the peer said of itself (JSON values)."""
POLL_LEASE_S = REPLICA_TTL_S
"""How far ahead a replica vouches for the peers whose idle polls it holds open, renewed at each of its
heartbeats. A peer is alive as long as its poll is, however long that poll was to last; when the
replica dies under it, the peer lapses this long (plus the grace) after the replica's last beat, so its
uuid is free again for its next process and its jobs fail soon."""


def pairs(flat: list[Any]) -> dict[Any, Any]:
    """A flat [field, value, ...] reply (HGETALL inside a script) as a dict."""
    return dict(zip(flat[::2], flat[1::2]))


class RedisPeers:
    """`Peers` in Redis. Open polls and bus watches wait on this replica's events, set by messages on
    the channel (or directly, when what woke them happened here)."""

    def __init__(self, link: Connection) -> None:
        self.link, self.keys = link, link.keys
        self.claim_s = CLAIM_S
        self.closing = False
        self._wakeups: dict[tuple[str, str], tuple[asyncio.Event, int]] = {}
        self._watchers: dict[str, tuple[asyncio.Event, int]] = {}
        self._vouched: Counter[tuple[str, str]] = Counter()
        """(user, uuid) of the idle polls held here, whose liveness each heartbeat renews."""
        link.handlers.append(self._on_message)
        link.on_reconnect.append(self._wake_all)
        link.on_data_lost.append(self._wake_all)  # open polls find their peer gone: it re-registers now
        link.on_beat.append(self._renew_vouched)

    # ---- local wake-ups ----------------------------------------------------------------------
    def _on_message(self, fields: list[Any]) -> None:
        if fields[0] == "wake":
            self.wake(fields[1], fields[2])
        elif fields[0] == "event":
            entry = self._watchers.get(fields[1])
            if entry is not None:
                entry[0].set()

    def wake(self, user_id: str, uuid: str) -> None:
        """Wake the peer's poll if this replica holds it."""
        entry = self._wakeups.get((user_id, uuid))
        if entry is not None:
            entry[0].set()

    def _wake_all(self) -> None:
        for event, _ in [*self._wakeups.values(), *self._watchers.values()]:
            event.set()

    @staticmethod
    def _hold(table: dict[Any, tuple[asyncio.Event, int]], key: Any) -> asyncio.Event:
        event, holders = table.get(key) or (asyncio.Event(), 0)
        table[key] = (event, holders + 1)
        event.clear()
        return event

    @staticmethod
    def _unhold(table: dict[Any, tuple[asyncio.Event, int]], key: Any) -> None:
        event, holders = table[key]
        if holders <= 1:
            del table[key]
        else:
            table[key] = (event, holders - 1)

    # ---- liveness ----------------------------------------------------------------------------
    def alive_until(self, user_id: str, uuid: str, deadline: float, *, raise_only: bool = True) -> Any:
        """`also` for a script: the peer, if registered, is alive until `deadline` (a later deadline it
        has is kept, unless not `raise_only`)."""
        member = {self.keys.member(user_id, uuid): deadline}
        return lambda pipe: pipe.zadd(self.keys.alive, member, xx=True, gt=raise_only)

    # ---- registry ----------------------------------------------------------------------------
    def _record(self, user_id: str, uuid: str, raw: dict[Any, Any], alive_until: float = 0.0,
                queued: int = 0) -> PeerRecord:
        """`polling`: the peer polled within half the grace period, or holds a poll open (see `take`)."""
        f = {decoded(k): v for k, v in raw.items()}
        info = {k[len(INFO_PREFIX):]: json.loads(v) for k, v in f.items() if k.startswith(INFO_PREFIX)}
        return PeerRecord(uuid=uuid, user_id=user_id, token=decoded(f.get("token")),
                          credential=decoded(f.get("credential")), instance=decoded(f.get("instance")) or None,
                          info=info, registered_at=float(f.get("registered_at") or 0),
                          last_seen=float(f.get("last_seen") or 0),
                          polling=alive_until >= time.time() + self.link.grace_s / 2, queued=queued)

    @store_errors
    async def register(self, user_id: str, uuid: str, credential: str, instance: str | None,
                       info: dict[str, Any], *, max_peers: int) -> PeerRecord:
        now = time.time()
        fields = [x for key, value in info.items() for x in (INFO_PREFIX + key, json.dumps(value))]
        answer = await self.link.run("register", [self.keys.peer(user_id, uuid)], [
            self.keys.user(user_id), uuid, credential, instance or "", secrets.token_urlsafe(24), now, max_peers,
            *fields])
        if answer[0] == b"held":
            raise PeerAuthError(
                f"peer uuid {uuid!r} is held by another live peer (another token or process); it is released when"
                f" that peer unregisters or has not polled for {self.link.grace_s:g}s. Use another uuid.")
        if answer[0] == b"full":
            raise PermissionError(f"{decoded(answer[1])} peers are registered on this bus, the most allowed;"
                                  " unregister one first")
        await self.link.redis.zadd(self.keys.alive, {self.keys.member(user_id, uuid): now + self.link.grace_s})
        return self._record(user_id, uuid, pairs(answer))

    @store_errors
    async def authenticate(self, user_id: str, uuid: str, token: str, *, touch: bool = False) -> PeerRecord:
        key = self.keys.peer(user_id, uuid)
        if touch:  # one round trip: check, note when it was heard from, refresh its liveness, read
            now = time.time()
            raw = pairs(await self.link.run("heard", [key], [self.keys.user(user_id), token, now],
                                            also=self.alive_until(user_id, uuid, now + self.link.grace_s)))
        else:
            raw = await self.link.redis.hgetall(key)
        if not raw or not hmac.compare_digest(raw.get(b"token", b""), token.encode()):
            raise PeerAuthError.of(uuid)
        return self._record(user_id, uuid, raw)

    @store_errors
    async def unregister(self, user_id: str, uuid: str) -> bool:
        member = self.keys.member(user_id, uuid)
        existed = await self.link.run("unregister", [self.keys.peer(user_id, uuid)], [
            self.keys.user(user_id), user_id, uuid, self.keys.channel],
            also=lambda pipe: pipe.zrem(self.keys.alive, member))
        return bool(existed)

    @store_errors
    async def users(self) -> list[str]:
        members = await self.link.redis.zrange(self.keys.alive, 0, -1)
        return sorted({self.keys.peer_of(member)[0] for member in members})

    @store_errors
    async def list(self, user_id: str) -> list[PeerRecord]:
        rows = await self.link.run("list", [self.keys.peers(user_id)], [self.keys.user(user_id)])
        if not rows:
            return []
        uuids = [decoded(row[0]) for row in rows]
        alive = await self.link.redis.zmscore(self.keys.alive, [self.keys.member(user_id, uuid) for uuid in uuids])
        return sorted((self._record(user_id, uuid, pairs(raw), float(until or 0), int(queued))
                       for uuid, (_, raw, queued), until in zip(uuids, rows, alive)),
                      key=lambda rec: rec.registered_at)

    @store_errors
    async def note_handler(self, user_id: str, uuid: str, entry: dict[str, Any]) -> None:
        key = self.keys.peer(user_id, uuid)
        raw = await self.link.redis.hget(key, INFO_PREFIX + "handlers")
        handlers = [h for h in (json.loads(raw) if raw else []) if h.get("package") != entry.get("package")]
        await self.link.redis.hset(key, INFO_PREFIX + "handlers", json.dumps([*handlers, entry]))

    # ---- queues ------------------------------------------------------------------------------
    @staticmethod
    def route(answer: list[Any], target_uuid: str | None) -> Route:
        """The route a script's `resolve` answer names ({'ok', uuid, backlog} or {'route', peers...})."""
        if answer[0] == b"ok":
            return Route(decoded(answer[1]), backlog=int(answer[2]))
        return route([decoded(m) for m in answer[1:]], target_uuid, lambda uuid: 0)

    @store_errors
    async def resolve(self, user_id: str, target_uuid: str | None) -> Route:
        answer = await self.link.run("resolve", [self.keys.peers(user_id)],
                                     [self.keys.user(user_id), target_uuid or ""])
        return self.route(answer, target_uuid)

    @store_errors
    async def push(self, user_id: str, uuid: str, job_id: str, payload: dict[str, Any]) -> None:
        here = await self.link.run("push", [self.keys.peer(user_id, uuid)], [
            self.keys.user(user_id), user_id, uuid, job_id, json.dumps(payload), self.link.replica, self.keys.channel])
        if here is None:
            raise LookupError(f"peer {uuid!r} left this bus before the job could be queued")
        if here == 1:
            self.wake(user_id, uuid)

    @store_errors
    async def withdraw(self, user_id: str, uuid: str, job_id: str) -> bool:
        return bool(await self.link.run("withdraw", [self.keys.queue(user_id, uuid)], [self.keys.user(user_id), uuid,
                                                                                          job_id]))

    async def _take(self, user_id: str, uuid: str, token: str, ack: list[str], running: str | None,
                    until: float) -> tuple[list[dict[str, Any]], list[str]]:
        now = time.time()
        answer = await self.link.run("take", [self.keys.peer(user_id, uuid)], [
            self.keys.user(user_id), user_id, uuid, token, now, self.link.replica, self.keys.channel,
            running or "", *ack], also=self.alive_until(user_id, uuid, until, raise_only=False))
        if answer is None:
            raise PeerAuthError.of(uuid)
        fresh_ids, ids, raw_payloads = answer
        by_id = {decoded(j): json.loads(raw) for j, raw in zip(ids, raw_payloads) if raw is not None}
        fresh = [decoded(j) for j in fresh_ids if by_id.get(decoded(j), {}).get("message_type") not in CONTROL_KINDS]
        return list(by_id.values()), fresh

    @store_errors
    async def take(self, user_id: str, uuid: str, token: str, ack: list[str], wait_s: float, *,
                   running: str | None = None) -> tuple[list[dict[str, Any]], list[str]]:
        """`Peers.take`; with `running` (a progress message), the jobs handed out for the first time are
        marked running in the same round trip, and callers waiting on another replica told `running`."""
        await self.link.ready()
        key = (user_id, uuid)
        woken = self._hold(self._wakeups, key)
        grace = self.link.grace_s
        vouched = hung_up = False
        try:
            # Each take makes the peer alive for the grace period. A poll still idle after half of it is
            # vouched for by this replica from then on (one write, then one per heartbeat for all of them).
            payloads, fresh = await self._take(user_id, uuid, token, ack, running, time.time() + grace)
            deadline = time.monotonic() + wait_s
            while not payloads and not self.closing and (remaining := deadline - time.monotonic()) > 0:
                wait = remaining if vouched else min(remaining, grace / 2)
                try:
                    await asyncio.wait_for(woken.wait(), wait)
                except TimeoutError:
                    if wait == remaining:
                        break
                    self._vouched[key] += 1
                    vouched = True
                    await self._heard(user_id, uuid, time.time() + POLL_LEASE_S + grace)
                    continue
                woken.clear()
                if vouched:
                    self._unvouch(key)
                    vouched = False
                payloads, fresh = await self._take(user_id, uuid, token, [], running, time.time() + grace)
            return payloads, fresh
        except asyncio.CancelledError:  # the peer hung up mid-poll: it is alive for the grace period only
            hung_up = True
            raise
        finally:
            if vouched:
                self._unvouch(key)
            self._unhold(self._wakeups, key)
            if hung_up:
                await asyncio.shield(self._hung_up(user_id, uuid, time.time() + grace))

    def _unvouch(self, key: tuple[str, str]) -> None:
        """This replica stops vouching for one poll of `key` (at once: the next renewal leaves it out)."""
        self._vouched[key] -= 1
        if self._vouched[key] <= 0:
            del self._vouched[key]

    async def _renew_vouched(self) -> None:
        """At each heartbeat: the peers whose idle polls this replica holds stay alive past the next one.
        A poll that ended while the renewal was on its way had its deadline lowered, which the renewal may
        have raised again: those are lowered once more, to the grace period from now."""
        if not self._vouched:
            return
        renewed = set(self._vouched)
        until = time.time() + POLL_LEASE_S + self.link.grace_s
        await self.link.redis.zadd(self.keys.alive, {self.keys.member(*key): until for key in renewed}, xx=True, gt=True)
        ended = renewed - set(self._vouched)
        if ended:
            until = time.time() + self.link.grace_s
            await self.link.redis.zadd(self.keys.alive, {self.keys.member(*key): until for key in ended}, xx=True)

    async def _hung_up(self, user_id: str, uuid: str, until: float) -> None:
        """The peer left its poll: alive only until `until`. Shielded from the cancel, so nobody awaits its
        end: a Redis that fails now is logged here (the peer's liveness then lapses at the deadline it had)."""
        try:
            await self._heard(user_id, uuid, until, lower=True)
        except RedisError as exc:
            log.info("peer %s left its poll while Redis failed (%s): its liveness lapses as it was", uuid, exc)

    async def _heard(self, user_id: str, uuid: str, until: float, *, lower: bool = False) -> None:
        """Alive until `until`; unless `lower`, a later deadline is kept."""
        async with self.link.redis.pipeline(transaction=False) as pipe:
            self.alive_until(user_id, uuid, until, raise_only=not lower)(pipe)
            pipe.hset(self.keys.peer(user_id, uuid), "last_seen", time.time())
            await pipe.execute()

    @store_errors
    async def expired(self) -> list[tuple[str, str]]:
        await self.link.ready()
        now = time.time()
        gone = await self.link.run("expired", [self.keys.alive], [now, now + self.claim_s])
        return [self.keys.peer_of(member) for member in gone]

    def release_polls(self) -> None:
        self.closing = True
        self._wake_all()

    # ---- the `_message_bus` feed ---------------------------------------------------------------
    @store_errors
    async def publish(self, user_id: str, kind: str, **data: Any) -> None:
        await self.link.run("publish", [self.keys.event_seq(user_id)], [
            self.keys.user(user_id), user_id, json.dumps({"kind": kind, **data}), EVENTS_KEPT, self.keys.channel])

    async def _read_events(self, user_id: str, cursor: int) -> tuple[list[BusEvent], int]:
        async with self.link.redis.pipeline(transaction=True) as pipe:
            pipe.xrange(self.keys.events(user_id), f"{min(cursor, 2**62) + 1}-0", "+", count=EVENTS_KEPT)
            pipe.get(self.keys.event_seq(user_id))
            entries, seq = await pipe.execute()
        if int(seq or 0) < cursor < 1 << 62:  # the feed started over (Redis lost its data): read it from its start
            return await self._read_events(user_id, 0)
        events = []
        for entry_id, fields in entries:
            data = json.loads(fields[b"e"])
            events.append(BusEvent(int(decoded(entry_id).split("-")[0]), data.pop("kind"), data))
        return events, int(seq or 0)

    @store_errors
    async def events_since(self, user_id: str, cursor: int, wait_s: float) -> tuple[list[BusEvent], int]:
        await self.link.ready()
        added = self._hold(self._watchers, user_id)
        try:
            events, seq = await self._read_events(user_id, cursor)
            deadline = time.monotonic() + wait_s
            while not events and not self.closing and (remaining := deadline - time.monotonic()) > 0:
                try:
                    await asyncio.wait_for(added.wait(), remaining)
                except TimeoutError:
                    break
                added.clear()
                events, seq = await self._read_events(user_id, cursor)
            return events, seq
        finally:
            self._unhold(self._watchers, user_id)
