"""The Redis backend: several `blendbus serve` replicas on one Redis act as one service.

Every piece of shared state lives in Redis, under a key prefix (docs/deployment.md lists the keys):

- a job is a hash; its status moves forward in a Lua script (an atomic compare-and-set), which also
  keeps the user's usage counters and retention caps;
- a peer's queue is a list of job ids plus a hash of payloads; a poll moves ids to an "unacked" list
  in one script, and only the peer's acknowledgement removes them, so a payload is handed out again
  until the peer confirms it, whichever replica it polls;
- liveness is a sorted set of wall-clock deadlines, which any replica's reaper claims atomically;
- the `_message_bus` feed is a stream per user;
- one pub/sub channel wakes the replica holding a peer's poll or a caller's waiter. Pub/sub drops
  messages only while a subscriber is disconnected; on reconnecting, every wait here re-reads Redis,
  and a call's wait re-reads its job every `progress_every_s` anyway, so a lost wake-up costs
  latency, never a job.

All keys of one user share a hash tag (`{user}`), so each script touches one slot.
"""

from __future__ import annotations

import asyncio
import functools
import hmac
import json
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar
from urllib.parse import parse_qs, quote, unquote, urlencode, urlsplit, urlunsplit

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from ..jobs import (DEFAULT_MAX_AGE_S, DEFAULT_MAX_BYTES_PER_USER, DEFAULT_MAX_JOBS_PER_USER,
                    ROW_OVERHEAD_BYTES)
from ..protocol import CANCEL, FINAL_STATUSES, LOST, OPEN_STATUSES, STATUS_RANK, envelope
from ..waiter import JobWaiter
from ..encoding import encodes_over, text_pieces
from ..paging import JSON, result_format
from .base import (UNSET, Backend, BusEvent, DuplicateJob, Job, JobStoreError, OverQuota, PeerAuthError, PeerRecord,
                   ProgressFn, Route, route)

log = logging.getLogger(__name__)

DEFAULT_PREFIX = "blendbus"
EVENTS_KEPT = 1000
"""Events kept per user in the `_message_bus` stream (approximately: Redis trims in whole nodes)."""
REPLICA_TTL_S = 10.0
"""A replica that has not said it is alive for this long no longer counts (its in-flight calls neither)."""
READY_WAIT_S = 10.0
"""How long a replica waits for Redis when it starts (or reconnects) before saying it does not answer."""
CLOSE_WAIT_S = 2.0
"""Longest each step of closing the backend may take."""
ORPHAN_AFTER_S = 60.0
"""A job recorded but in no queue for this long was orphaned by a dying replica (swept by `prune`)."""
MAX_CONNECTIONS = 128
"""Connections one replica opens to Redis at most; more concurrent commands wait for one (10 s at most)."""
STAGE_RESULT_BYTES = 1024 * 1024
"""A result whose text is longer is written to Redis in pieces of this size, never as one command."""
INFO_PREFIX = "i:"
"""Peer hash fields holding what the peer said of itself (JSON values)."""

T = TypeVar("T")

# ---- Lua ------------------------------------------------------------------------------------------
_SIZE = """
local function resize(job, usage)
  local new = tonumber(redis.call('HGET', job, 'fixed')) + tonumber(redis.call('HGET', job, 'payload') or '0')
  for _, f in ipairs({'kind', 'command', 'target', 'error', 'message'}) do
    new = new + redis.call('HSTRLEN', job, f)
  end
  new = new + redis.call('STRLEN', job .. ':result')
  local old = tonumber(redis.call('HGET', job, 'size') or '0')
  redis.call('HSET', job, 'size', new)
  redis.call('HINCRBY', usage, 'bytes', new - old)
end
local function drop(usage, done, base, victim)
  redis.call('ZREM', done, victim)
  redis.call('ZREM', base .. 'jobs:all', victim)
  redis.call('ZREM', base .. 'jobs:queued', victim)
  local key = base .. 'job:' .. victim
  local size = tonumber(redis.call('HGET', key, 'size') or '0')
  redis.call('DEL', key .. ':result')
  if redis.call('DEL', key) == 1 then
    redis.call('HINCRBY', usage, 'jobs', -1)
    redis.call('HINCRBY', usage, 'bytes', -size)
  end
end
local function trim(usage, done, base, max_jobs, max_bytes, keep)
  local removed = 0
  while true do
    local jobs = tonumber(redis.call('HGET', usage, 'jobs') or '0')
    local bytes = tonumber(redis.call('HGET', usage, 'bytes') or '0')
    if jobs <= max_jobs and bytes <= max_bytes then break end
    local oldest = redis.call('ZRANGE', done, 0, 1)
    local victim = oldest[1]
    if victim == keep then victim = oldest[2] end
    if not victim then break end
    drop(usage, done, base, victim)
    removed = removed + 1
  end
  return removed
end
"""

# KEYS: job, open set, usage, done, users
# ARGV: kind, command, target, now, fixed, job_id, user, max_jobs, max_bytes, base, payload bytes
_CREATE = _SIZE + """
if redis.call('EXISTS', KEYS[1]) == 1 then return {'taken'} end
redis.call('HSET', KEYS[1], 'kind', ARGV[1], 'command', ARGV[2], 'target', ARGV[3], 'status', 'queued',
           'created', ARGV[4], 'updated', ARGV[4], 'error', '', 'fixed', ARGV[5], 'payload', ARGV[11])
redis.call('SADD', KEYS[2], ARGV[6])
redis.call('ZADD', ARGV[10] .. 'jobs:all', ARGV[4], ARGV[6])
redis.call('ZADD', ARGV[10] .. 'jobs:queued', ARGV[4], ARGV[6])
redis.call('HINCRBY', KEYS[3], 'jobs', 1)
resize(KEYS[1], KEYS[3])
redis.call('SADD', KEYS[5], ARGV[7])
trim(KEYS[3], KEYS[4], ARGV[10], tonumber(ARGV[8]), tonumber(ARGV[9]), ARGV[6])
local jobs = tonumber(redis.call('HGET', KEYS[3], 'jobs'))
local bytes = tonumber(redis.call('HGET', KEYS[3], 'bytes'))
if jobs > tonumber(ARGV[8]) or bytes > tonumber(ARGV[9]) then  -- the rest is in flight: it cannot make room
  redis.call('SREM', KEYS[2], ARGV[6])
  drop(KEYS[3], KEYS[4], ARGV[10], ARGV[6])
  return {'full', tostring(jobs - 1), tostring(tonumber(redis.call('HGET', KEYS[3], 'bytes')))}
end
return {'ok'}
"""

# KEYS: job, usage, done   ARGV: status, now, has_result (0, 1: in ARGV[4], 2: staged at job:result:new),
#                                result, has_error, error, ended, base, job_id, max_jobs, max_bytes, format,
#                                lower statuses...
_ADVANCE = _SIZE + """
local staged = KEYS[1] .. ':result:new'
local cur = redis.call('HGET', KEYS[1], 'status')
local forward = false
if cur then for i = 13, #ARGV do if ARGV[i] == cur then forward = true; break end end end
if not forward then redis.call('DEL', staged); return 0 end
redis.call('HSET', KEYS[1], 'status', ARGV[1], 'updated', ARGV[2])
if ARGV[7] == '1' then redis.call('HSET', KEYS[1], 'payload', 0) end  -- the peer has the payload, or never will
redis.call('ZREM', ARGV[8] .. 'jobs:queued', ARGV[9])
if ARGV[3] == '1' then redis.call('SET', KEYS[1] .. ':result', ARGV[4]) end
if ARGV[3] == '2' then redis.call('RENAME', staged, KEYS[1] .. ':result') end
if ARGV[3] ~= '0' then redis.call('HSET', KEYS[1], 'format', ARGV[12]) end
if ARGV[5] == '1' then redis.call('HSET', KEYS[1], 'error', ARGV[6]) end
resize(KEYS[1], KEYS[2])
if ARGV[7] == '1' then
  redis.call('SREM', ARGV[8] .. 'jobs:open:' .. redis.call('HGET', KEYS[1], 'target'), ARGV[9])
  redis.call('ZADD', KEYS[3], ARGV[2], ARGV[9])
  trim(KEYS[2], KEYS[3], ARGV[8], tonumber(ARGV[10]), tonumber(ARGV[11]), ARGV[9])
end
return 1
"""

# KEYS: job, usage, done   ARGV: has_fraction, fraction, has_message, message, now, base, job_id, max_jobs, max_bytes
_PROGRESS = _SIZE + """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if ARGV[1] == '1' then redis.call('HSET', KEYS[1], 'progress', ARGV[2]) else redis.call('HDEL', KEYS[1], 'progress') end
if ARGV[3] == '1' then redis.call('HSET', KEYS[1], 'message', ARGV[4]) else redis.call('HDEL', KEYS[1], 'message') end
redis.call('HSET', KEYS[1], 'updated', ARGV[5])
resize(KEYS[1], KEYS[2])
trim(KEYS[2], KEYS[3], ARGV[6], tonumber(ARGV[8]), tonumber(ARGV[9]), ARGV[7])
return 1
"""

# KEYS: usage, done   ARGV: base, cutoff, max_jobs, max_bytes, orphan cutoff, now, orphan error
_PRUNE = _SIZE + """
local base = ARGV[1]
-- A job still 'queued' long after it was recorded, in no queue of its peer: the replica that
-- recorded it died before queuing it. Nobody can run it: it is lost.
for _, job in ipairs(redis.call('ZRANGEBYSCORE', base .. 'jobs:queued', '-inf', ARGV[5], 'LIMIT', 0, 1000)) do
  local key = base .. 'job:' .. job
  local target = redis.call('HGET', key, 'target') or ''
  local queued = redis.call('LPOS', base .. 'q:' .. target, job) or redis.call('LPOS', base .. 'ul:' .. target, job)
  if not queued then
    redis.call('ZREM', base .. 'jobs:queued', job)
    if redis.call('HGET', key, 'status') == 'queued' then
      redis.call('HSET', key, 'status', 'lost', 'error', ARGV[7], 'updated', ARGV[6])
      redis.call('SREM', base .. 'jobs:open:' .. target, job)
      redis.call('ZADD', KEYS[2], ARGV[6], job)
      resize(key, KEYS[1])
    end
  end
end
local old = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[2], 'LIMIT', 0, 10000)
for _, victim in ipairs(old) do drop(KEYS[1], KEYS[2], base, victim) end
return #old + trim(KEYS[1], KEYS[2], base, tonumber(ARGV[3]), tonumber(ARGV[4]), '')
"""

# KEYS: peer, peers, alive   ARGV: uuid, credential, instance, token, now, max_peers, member, deadline, field, value...
_REGISTER = """
local cur = redis.call('HMGET', KEYS[1], 'credential', 'instance')
if cur[1] then
  if cur[1] ~= ARGV[2] or cur[2] ~= ARGV[3] then return {'held'} end
else
  local n = redis.call('SCARD', KEYS[2])
  if n >= tonumber(ARGV[6]) then return {'full', tostring(n)} end
  redis.call('HSET', KEYS[1], 'credential', ARGV[2], 'instance', ARGV[3], 'registered_at', ARGV[5])
  redis.call('SADD', KEYS[2], ARGV[1])
end
redis.call('HSET', KEYS[1], 'token', ARGV[4], 'last_seen', ARGV[5])
for i = 9, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
redis.call('ZADD', KEYS[3], ARGV[8], ARGV[7])
return redis.call('HGETALL', KEYS[1])
"""

# KEYS: peer, q, ul, qp, alive   ARGV: token, member, deadline if empty, deadline if not, now, acks...
_TAKE = """
local tok = redis.call('HGET', KEYS[1], 'token')
if not tok or tok ~= ARGV[1] then return false end
for i = 6, #ARGV do
  if redis.call('LREM', KEYS[3], 0, ARGV[i]) > 0 then redis.call('HDEL', KEYS[4], ARGV[i]) end
end
local fresh = redis.call('LRANGE', KEYS[2], 0, -1)
if #fresh > 0 then
  redis.call('RPUSH', KEYS[3], unpack(fresh))
  redis.call('DEL', KEYS[2])
end
local ids = redis.call('LRANGE', KEYS[3], 0, -1)
redis.call('ZADD', KEYS[5], #ids == 0 and ARGV[3] or ARGV[4], ARGV[2])
redis.call('HSET', KEYS[1], 'last_seen', ARGV[5])
if #ids == 0 then return {{}, {}, {}} end
return {fresh, ids, redis.call('HMGET', KEYS[4], unpack(ids))}
"""

# KEYS: peer, alive   ARGV: token, member, deadline, now
_HEARD = """
local tok = redis.call('HGET', KEYS[1], 'token')
if tok and tok == ARGV[1] then
  redis.call('ZADD', KEYS[2], 'XX', 'GT', ARGV[3], ARGV[2])
  redis.call('HSET', KEYS[1], 'last_seen', ARGV[4])
end
return redis.call('HGETALL', KEYS[1])
"""

# KEYS: peer, q, qp   ARGV: job_id, payload, channel, message
_PUSH = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[3], ARGV[1], ARGV[2])
redis.call('RPUSH', KEYS[2], ARGV[1])
redis.call('PUBLISH', ARGV[3], ARGV[4])
return 1
"""

# KEYS: q, qp   ARGV: job_id
_WITHDRAW = """
if redis.call('LREM', KEYS[1], 0, ARGV[1]) == 0 then return 0 end
redis.call('HDEL', KEYS[2], ARGV[1])
return 1
"""

# KEYS: peers   ARGV: base, target
_RESOLVE = """
local function backlog(uuid)
  return redis.call('LLEN', ARGV[1] .. 'q:' .. uuid) + redis.call('LLEN', ARGV[1] .. 'ul:' .. uuid)
end
if ARGV[2] ~= '' then
  if redis.call('SISMEMBER', KEYS[1], ARGV[2]) == 1 then return {'ok', ARGV[2], backlog(ARGV[2])} end
  return {'other', redis.call('SMEMBERS', KEYS[1])}
end
if redis.call('SCARD', KEYS[1]) == 1 then
  local only = redis.call('SMEMBERS', KEYS[1])[1]
  return {'ok', only, backlog(only)}
end
return {'other', redis.call('SMEMBERS', KEYS[1])}
"""

# KEYS: peers, alive   ARGV: base, member prefix
_LIST = """
local out = {}
for _, uuid in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  out[#out + 1] = {uuid, redis.call('HGETALL', ARGV[1] .. 'peer:' .. uuid),
                   redis.call('ZSCORE', KEYS[2], ARGV[2] .. uuid) or '0', redis.call('LLEN', ARGV[1] .. 'q:' .. uuid)}
end
return out
"""

# KEYS: peer, peers, q, ul, qp, alive   ARGV: uuid, member, channel, message
_UNREGISTER = """
local existed = redis.call('DEL', KEYS[1])
redis.call('DEL', KEYS[3], KEYS[4], KEYS[5])
redis.call('SREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[6], ARGV[2])
redis.call('PUBLISH', ARGV[3], ARGV[4])
return existed
"""

# KEYS: alive   ARGV: now
_EXPIRED = """
local gone = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, 100)
for _, member in ipairs(gone) do redis.call('ZREM', KEYS[1], member) end
return gone
"""

# KEYS: seq, stream   ARGV: event JSON, maxlen, channel, message
_PUBLISH = """
local seq = redis.call('INCR', KEYS[1])
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], seq .. '-0', 'e', ARGV[1])
redis.call('PUBLISH', ARGV[3], ARGV[4])
return seq
"""

# KEYS: active, replicas   ARGV: now, limit, replica
_ACQUIRE = """
local total = 0
local counts = redis.call('HGETALL', KEYS[1])
for i = 1, #counts, 2 do
  local alive = redis.call('ZSCORE', KEYS[2], counts[i])
  if alive and tonumber(alive) >= tonumber(ARGV[1]) then
    total = total + tonumber(counts[i + 1])
  else
    redis.call('HDEL', KEYS[1], counts[i])
  end
end
if total >= tonumber(ARGV[2]) then return 0 end
redis.call('HINCRBY', KEYS[1], ARGV[3], 1)
return 1
"""

# KEYS: active   ARGV: replica
_RELEASE = """
if redis.call('HINCRBY', KEYS[1], ARGV[1], -1) <= 0 then redis.call('HDEL', KEYS[1], ARGV[1]) end
return 1
"""


def parse_url(url: str) -> tuple[str, str]:
    """(the URL redis-py connects to, the key prefix): `?prefix=` is ours, everything else is redis-py's."""
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    prefix = query.pop("prefix", [DEFAULT_PREFIX])[0]
    if not prefix or any(c in prefix for c in "{}\n"):
        raise ValueError(f"prefix {prefix!r}: use letters, digits, ':' or '-'")
    return urlunsplit(parts._replace(query=urlencode(query, doseq=True))), prefix


def _failures_are_store_errors(fn: Callable[..., Awaitable[T]]) -> Callable[..., Awaitable[T]]:
    """Redis being down is the backend failing, said in one backend-neutral error."""

    @functools.wraps(fn)
    async def wrapper(self: Any, *args: Any, **kwargs: Any) -> T:
        try:
            return await fn(self, *args, **kwargs)
        except RedisError as exc:
            raise JobStoreError(f"the Redis backend ({self.shared.where}) failed: {exc}") from exc

    return wrapper


def _s(value: bytes | str | None) -> str:
    return value.decode() if isinstance(value, bytes) else (value or "")


class _Shared:
    """One connection pool, one pub/sub listener and the keys, for the three parts of one backend."""

    def __init__(self, url: str, grace_s: float) -> None:
        connect_url, self.prefix = parse_url(url)
        parts = urlsplit(connect_url)
        self.where = f"{parts.hostname}:{parts.port or 6379}{parts.path or '/0'}"  # no password in messages
        # A bounded pool that makes a burst wait its turn (redis-py's default pool fails it instead).
        pool = aioredis.BlockingConnectionPool.from_url(connect_url, max_connections=MAX_CONNECTIONS, timeout=10,
                                                        health_check_interval=30)
        self.redis = aioredis.Redis(connection_pool=pool)
        self.grace_s = grace_s
        self.replica = secrets.token_hex(6)
        self.channel = f"{self.prefix}:notify"
        self.handlers: list[Callable[[list[Any]], None]] = []
        self.on_reconnect: list[Callable[[], None]] = []
        self.on_data_lost: list[Callable[[], None]] = []
        """Called when Redis turns out to have lost everything (restarted empty, flushed): see `_beat`."""
        self.epoch: bytes | None = None
        """The random value this replica found (or put) at the epoch key: it changes only when Redis lost its data."""
        self.scripts: dict[str, Any] = {}
        self._listener: asyncio.Task[None] | None = None
        self._heartbeat: asyncio.Task[None] | None = None
        self._subscribed: asyncio.Event | None = None

    def user(self, user_id: str) -> str:
        """The key base of one user: every key of theirs shares this hash tag."""
        return f"{self.prefix}:{{{quote(user_id, safe='')}}}:"

    def member(self, user_id: str, uuid: str = "") -> str:
        """A peer's member in the global liveness set."""
        return f"{quote(user_id, safe='')}\n{uuid}"

    @staticmethod
    def peer_of(member: bytes | str) -> tuple[str, str]:
        """(user_id, uuid) of a member of the liveness set: `member`'s inverse."""
        user, _, uuid = _s(member).partition("\n")
        return unquote(user), uuid

    @property
    def alive_key(self) -> str:
        return f"{self.prefix}:alive"

    @property
    def replicas_key(self) -> str:
        return f"{self.prefix}:replicas"

    @property
    def epoch_key(self) -> str:
        return f"{self.prefix}:epoch"

    async def check_epoch(self) -> bool:
        """Whether Redis still holds what this replica saw there; sets the epoch key when it is missing.
        A Redis without persistence that restarts, or a flush, loses every registration and job: the
        first replica to notice writes a new epoch, and every replica tells its waits (`on_data_lost`)."""
        found = await self.redis.set(self.epoch_key, secrets.token_hex(8), nx=True, get=True)
        current = found if found is not None else await self.redis.get(self.epoch_key)
        kept = self.epoch is None or current == self.epoch
        self.epoch = current
        if not kept:
            log.warning("the Redis backend (%s) lost its data (restarted empty, or flushed): peers re-register,"
                        " jobs in flight are lost", self.where)
            for fn in self.on_data_lost:
                fn()
        return kept

    def script(self, name: str, source: str) -> Any:
        if name not in self.scripts:
            self.scripts[name] = self.redis.register_script(source)
        return self.scripts[name]

    async def run(self, name: str, source: str, keys: list[str], args: list[Any]) -> Any:
        return await self.script(name, source)(keys=keys, args=args)

    async def notify(self, *message: Any) -> None:
        await self.redis.publish(self.channel, json.dumps(message))

    def wire(self, *message: Any) -> str:
        return json.dumps(message)

    async def ready(self) -> None:
        """Listening on the channel and counted among the live replicas: start on first use."""
        loop = asyncio.get_running_loop()
        if self._listener is None or self._listener.get_loop() is not loop or self._listener.done():
            self._subscribed = asyncio.Event()
            self._listener = loop.create_task(self._listen())
            self._heartbeat = loop.create_task(self._beat())
        assert self._subscribed is not None
        if not self._subscribed.is_set():
            try:
                await asyncio.wait_for(asyncio.shield(self._subscribed.wait()), READY_WAIT_S)
            except TimeoutError:
                raise JobStoreError(f"the Redis backend ({self.where}) does not answer: is Redis running"
                                    " there, and is the URL (--backend) right?") from None

    async def _beat(self) -> None:
        while True:
            try:
                await self.redis.zadd(self.replicas_key, {self.replica: time.time() + REPLICA_TTL_S})
                await self.redis.zremrangebyscore(self.replicas_key, "-inf", time.time() - 3600)
                await self.check_epoch()
            except RedisError as exc:
                log.warning("Redis backend: heartbeat failed (%s)", exc)
            await asyncio.sleep(REPLICA_TTL_S / 5)

    async def _listen(self) -> None:
        assert self._subscribed is not None
        first = True
        while True:
            pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self.channel)
                await self.redis.zadd(self.replicas_key, {self.replica: time.time() + REPLICA_TTL_S})
                await self.check_epoch()
                self._subscribed.set()
                if not first:  # wake-ups sent while we were away are lost: every waiter re-reads now
                    for fn in self.on_reconnect:
                        fn()
                first = False
                while True:
                    msg = await pubsub.get_message(ignore_subscribe_messages=True, timeout=None)
                    if msg is None or msg.get("type") != "message":
                        continue
                    try:
                        fields = json.loads(msg["data"])
                    except ValueError:
                        continue
                    for handle in self.handlers:
                        handle(fields)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - reconnect, whatever broke
                log.warning("Redis backend: notification channel lost (%s); reconnecting", exc)
                await asyncio.sleep(0.5)
            finally:
                try:  # bounded: a connection cut mid-read must not hold up a shutdown
                    await asyncio.wait_for(pubsub.aclose(), CLOSE_WAIT_S)
                except Exception:  # noqa: BLE001
                    pass

    async def close(self) -> None:
        """Stop listening and say this replica is gone; every step bounded, so a shutdown never hangs
        on a Redis that stopped answering."""
        for task in (self._listener, self._heartbeat):
            if task is not None:
                task.cancel()
                try:
                    await asyncio.wait_for(task, CLOSE_WAIT_S)
                except (asyncio.CancelledError, Exception):  # noqa: BLE001
                    pass
        self._listener = self._heartbeat = None
        for step in (self.redis.zrem(self.replicas_key, self.replica), self.redis.aclose()):
            try:
                await asyncio.wait_for(step, CLOSE_WAIT_S)
            except (RedisError, TimeoutError, OSError):
                pass


class RedisJobs:
    """`Jobs` in Redis hashes, with per-user retention (age, jobs and bytes) kept by the scripts."""

    def __init__(self, shared: _Shared, *, max_age_s: float = DEFAULT_MAX_AGE_S,
                 max_jobs_per_user: int = DEFAULT_MAX_JOBS_PER_USER,
                 max_bytes_per_user: int = DEFAULT_MAX_BYTES_PER_USER) -> None:
        self.shared = shared
        self.max_age_s, self.max_jobs_per_user, self.max_bytes_per_user = max_age_s, max_jobs_per_user, max_bytes_per_user
        self.orphan_after_s = ORPHAN_AFTER_S

    def _keys(self, user_id: str) -> tuple[str, str, str]:
        base = self.shared.user(user_id)
        return base, base + "usage", base + "jobs:done"

    @_failures_are_store_errors
    async def create(self, user_id: str, job_id: str, *, kind: str, command: str, target_uuid: str | None,
                     payload_bytes: int = 0) -> None:
        base, usage, done = self._keys(user_id)
        fixed = ROW_OVERHEAD_BYTES + len(user_id.encode()) + len(job_id.encode())
        answer = await self.shared.run("create", _CREATE, [
            base + "job:" + job_id, base + "jobs:open:" + (target_uuid or ""), usage, done, f"{self.shared.prefix}:users",
        ], [kind, command, target_uuid or "", time.time(), fixed, job_id, user_id,
            self.max_jobs_per_user, self.max_bytes_per_user, base, payload_bytes])
        if answer[0] == b"taken":
            raise DuplicateJob(f"job id {job_id!r} is already used; choose another or omit it")
        if answer[0] == b"full":
            raise OverQuota.of_user(int(answer[1]), int(answer[2]), self.max_jobs_per_user, self.max_bytes_per_user)

    @_failures_are_store_errors
    async def advance(self, user_id: str, job_id: str, status: str, *, result: Any = UNSET,
                      error: str | None = None) -> bool:
        base, usage, done = self._keys(user_id)
        job = base + "job:" + job_id
        lower = [s for s, rank in STATUS_RANK.items() if rank < STATUS_RANK[status]]
        how, inline = 0, b""
        if result is not UNSET:
            if encodes_over(result, STAGE_RESULT_BYTES):  # in pieces, never whole: staged, then renamed in
                how = 2
                await self._stage(job + ":result:new", result)
            else:
                how, inline = 1, b"".join(text_pieces(result))
        moved = await self.shared.run("advance", _ADVANCE, [job, usage, done], [
            status, time.time(), how, inline, int(error is not None), error or "",
            int(status not in OPEN_STATUSES), base, job_id, self.max_jobs_per_user, self.max_bytes_per_user,
            result_format(result) if how else "", *lower])
        return bool(moved)

    async def _stage(self, key: str, result: Any) -> None:
        """Write a large result's text to `key` a piece at a time (a few pieces per round trip)."""
        await self.shared.redis.delete(key)
        async with self.shared.redis.pipeline(transaction=False) as pipe:
            for n, piece in enumerate(text_pieces(result, STAGE_RESULT_BYTES)):
                pipe.append(key, piece)
                if n % 8 == 7:
                    await pipe.execute()
            await pipe.execute()

    @_failures_are_store_errors
    async def set_progress(self, user_id: str, job_id: str, fraction: float | None, message: str | None) -> None:
        base, usage, done = self._keys(user_id)
        await self.shared.run("progress", _PROGRESS, [base + "job:" + job_id, usage, done], [
            int(fraction is not None), repr(fraction) if fraction is not None else "", int(message is not None),
            message or "", time.time(), base, job_id, self.max_jobs_per_user, self.max_bytes_per_user])

    @_failures_are_store_errors
    async def get(self, user_id: str, job_id: str, *, result: bool = True) -> Job | None:
        key = self.shared.user(user_id) + "job:" + job_id
        async with self.shared.redis.pipeline(transaction=True) as pipe:
            pipe.hgetall(key)
            pipe.strlen(key + ":result")
            if result:
                pipe.get(key + ":result")
            raw, size, *data = await pipe.execute()
        if not raw:
            return None
        return self._job(user_id, job_id, {k.decode(): v for k, v in raw.items()}, data[0] if data else None, size)

    @_failures_are_store_errors
    async def read_result(self, user_id: str, job_id: str, offset: int, length: int) -> tuple[bytes, int, str] | None:
        key = self.shared.user(user_id) + "job:" + job_id
        async with self.shared.redis.pipeline(transaction=True) as pipe:
            pipe.hget(key, "format")
            pipe.strlen(key + ":result")
            pipe.getrange(key + ":result", max(offset, 0), max(offset, 0) + length - 1)
            fmt, total, data = await pipe.execute()
        if fmt is None:  # no such job, or no result stored
            return None
        return (data if offset < total and length > 0 else b""), total, _s(fmt)

    @_failures_are_store_errors
    async def recent(self, user_id: str, limit: int, before: float | None = None) -> list[Job]:
        base = self.shared.user(user_id)
        top = f"({before}" if before is not None else "+inf"
        ids = [_s(j) for j in await self.shared.redis.zrevrangebyscore(base + "jobs:all", top, "-inf", start=0, num=limit)]
        fields = ("kind", "command", "target", "status", "error", "progress", "message", "created", "updated")
        async with self.shared.redis.pipeline(transaction=False) as pipe:
            for job_id in ids:
                pipe.hmget(base + "job:" + job_id, *fields)
            rows = await pipe.execute()
        return [self._job(user_id, job_id, dict(zip(fields, row))) for job_id, row in zip(ids, rows) if row[3] is not None]

    @staticmethod
    def _job(user_id: str, job_id: str, f: dict[str, Any], data: bytes | None = None, size: int = 0) -> Job:
        fmt = f.get("format")
        return Job(user_id=user_id, job_id=job_id, kind=_s(f["kind"]), command=_s(f["command"]),
                   target_uuid=_s(f.get("target")) or None, status=_s(f["status"]), result_data=data,
                   error=_s(f.get("error")), progress=float(f["progress"]) if f.get("progress") is not None else None,
                   message=_s(f["message"]) if f.get("message") is not None else None, created=float(f["created"]),
                   updated=float(f["updated"]), result_format=_s(fmt) or JSON, result_bytes=size if fmt else None)

    @_failures_are_store_errors
    async def in_flight(self, user_id: str, target_uuid: str) -> list[str]:
        members = await self.shared.redis.smembers(self.shared.user(user_id) + "jobs:open:" + target_uuid)
        return sorted(_s(m) for m in members)

    async def recover(self) -> int:
        """Nothing to do: peers and their jobs outlive any one replica. A job is marked lost only when its
        peer's liveness lapses (the reaper), never because a replica restarted."""
        return 0

    @_failures_are_store_errors
    async def prune(self) -> int:
        """Retention, and jobs orphaned by a replica that died between recording and queuing them
        (still `queued` after `orphan_after_s` and in no queue) become lost."""
        removed = 0
        now = time.time()
        for user in await self.shared.redis.smembers(f"{self.shared.prefix}:users"):
            base, usage, done = self._keys(_s(user))
            removed += await self.shared.run("prune", _PRUNE, [usage, done], [
                base, now - self.max_age_s, self.max_jobs_per_user, self.max_bytes_per_user, now - self.orphan_after_s,
                now, "the server replica that recorded this job stopped before queuing it; it never ran"])
        return removed

    @_failures_are_store_errors
    async def usage(self, user_id: str) -> tuple[int, int]:
        jobs, size = await self.shared.redis.hmget(self._keys(user_id)[1], "jobs", "bytes")
        return int(jobs or 0), int(size or 0)

    @_failures_are_store_errors
    async def users(self) -> list[str]:
        known = sorted(_s(user) for user in await self.shared.redis.smembers(f"{self.shared.prefix}:users"))
        async with self.shared.redis.pipeline(transaction=False) as pipe:
            for user in known:
                pipe.hget(self._keys(user)[1], "jobs")
            counts = await pipe.execute()
        return [user for user, count in zip(known, counts, strict=True) if int(count or 0)]

    async def close(self) -> None:
        await self.shared.close()


class RedisPeers:
    """`Peers` in Redis: registrations, queues, liveness and the event feed, shared by every replica."""

    def __init__(self, shared: _Shared) -> None:
        self.shared = shared
        self.closing = False
        self._wakeups: dict[tuple[str, str], tuple[asyncio.Event, int]] = {}
        self._watchers: dict[str, tuple[asyncio.Event, int]] = {}
        shared.handlers.append(self._on_message)
        shared.on_reconnect.append(self._wake_all)
        shared.on_data_lost.append(self._wake_all)  # open polls find their peer gone: it re-registers now

    # ---- local wake-ups ----------------------------------------------------------------------
    def _on_message(self, fields: list[Any]) -> None:
        if fields[0] == "wake":
            entry = self._wakeups.get((fields[1], fields[2]))
            if entry is not None:
                entry[0].set()
        elif fields[0] == "event":
            entry_e = self._watchers.get(fields[1])
            if entry_e is not None:
                entry_e[0].set()

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

    # ---- registry ----------------------------------------------------------------------------
    def _record(self, user_id: str, uuid: str, raw: dict[str, Any], alive_until: float = 0.0,
                queued: int = 0) -> PeerRecord:
        f = {_s(k): v for k, v in raw.items()}
        info = {k[len(INFO_PREFIX):]: json.loads(v) for k, v in f.items() if k.startswith(INFO_PREFIX)}
        return PeerRecord(uuid=uuid, user_id=user_id, token=_s(f.get("token")), credential=_s(f.get("credential")),
                          instance=_s(f.get("instance")) or None, info=info,
                          registered_at=float(f.get("registered_at") or 0), last_seen=float(f.get("last_seen") or 0),
                          polling=alive_until > time.time() + self.shared.grace_s + 0.5, queued=queued)

    @staticmethod
    def _pairs(flat: list[Any]) -> dict[Any, Any]:
        return dict(zip(flat[::2], flat[1::2]))

    @_failures_are_store_errors
    async def register(self, user_id: str, uuid: str, credential: str, instance: str | None,
                       info: dict[str, Any], *, max_peers: int) -> PeerRecord:
        base, now = self.shared.user(user_id), time.time()
        fields = [x for key, value in info.items() for x in (INFO_PREFIX + key, json.dumps(value))]
        answer = await self.shared.run("register", _REGISTER, [base + "peer:" + uuid, base + "peers", self.shared.alive_key], [
            uuid, credential, instance or "", secrets.token_urlsafe(24), now, max_peers,
            self.shared.member(user_id, uuid), now + self.shared.grace_s, *fields])
        if answer[0] == b"held":
            raise PeerAuthError(
                f"peer uuid {uuid!r} is held by another live peer (another token or process); it is released when"
                f" that peer unregisters or has not polled for {self.shared.grace_s:g}s. Use another uuid.")
        if answer[0] == b"full":
            raise PermissionError(f"{_s(answer[1])} peers are registered on this bus, the most allowed;"
                                  " unregister one first")
        return self._record(user_id, uuid, self._pairs(answer))

    @_failures_are_store_errors
    async def authenticate(self, user_id: str, uuid: str, token: str, *, touch: bool = False) -> PeerRecord:
        key = self.shared.user(user_id) + "peer:" + uuid
        if touch:  # one round trip: check, refresh liveness, read
            now = time.time()
            raw = self._pairs(await self.shared.run("heard", _HEARD, [key, self.shared.alive_key], [
                token, self.shared.member(user_id, uuid), now + self.shared.grace_s, now]))
        else:
            raw = await self.shared.redis.hgetall(key)
        stored = raw.get(b"token", b"")
        if not raw or not hmac.compare_digest(stored, token.encode()):
            raise PeerAuthError(f"peer {uuid!r} is not registered with that token; call blender_register_client again")
        return self._record(user_id, uuid, raw)

    @_failures_are_store_errors
    async def unregister(self, user_id: str, uuid: str) -> bool:
        base = self.shared.user(user_id)
        existed = await self.shared.run("unregister", _UNREGISTER, [
            base + "peer:" + uuid, base + "peers", base + "q:" + uuid, base + "ul:" + uuid, base + "qp:" + uuid,
            self.shared.alive_key], [uuid, self.shared.member(user_id, uuid), self.shared.channel,
                                     self.shared.wire("wake", user_id, uuid)])
        return bool(existed)

    @_failures_are_store_errors
    async def users(self) -> list[str]:
        members = await self.shared.redis.zrange(self.shared.alive_key, 0, -1)
        return sorted({self.shared.peer_of(member)[0] for member in members})

    @_failures_are_store_errors
    async def list(self, user_id: str) -> list[PeerRecord]:
        base = self.shared.user(user_id)
        rows = await self.shared.run("list", _LIST, [base + "peers", self.shared.alive_key],
                                     [base, self.shared.member(user_id)])
        return sorted((self._record(user_id, _s(uuid), self._pairs(raw), float(alive), int(queued))
                       for uuid, raw, alive, queued in rows), key=lambda rec: rec.registered_at)

    @_failures_are_store_errors
    async def note_handler(self, user_id: str, uuid: str, entry: dict[str, Any]) -> None:
        key = self.shared.user(user_id) + "peer:" + uuid
        raw = await self.shared.redis.hget(key, INFO_PREFIX + "handlers")
        handlers = [h for h in (json.loads(raw) if raw else []) if h.get("package") != entry.get("package")]
        await self.shared.redis.hset(key, INFO_PREFIX + "handlers", json.dumps([*handlers, entry]))

    @_failures_are_store_errors
    async def resolve(self, user_id: str, target_uuid: str | None) -> Route:
        base = self.shared.user(user_id)
        answer = await self.shared.run("resolve", _RESOLVE, [base + "peers"], [base, target_uuid or ""])
        if answer[0] == b"ok":
            return Route(_s(answer[1]), backlog=int(answer[2]))
        return route([_s(m) for m in answer[1]], target_uuid, lambda uuid: 0)

    @_failures_are_store_errors
    async def push(self, user_id: str, uuid: str, job_id: str, payload: dict[str, Any]) -> None:
        base = self.shared.user(user_id)
        queued = await self.shared.run("push", _PUSH, [base + "peer:" + uuid, base + "q:" + uuid, base + "qp:" + uuid], [
            job_id, json.dumps(payload), self.shared.channel, self.shared.wire("wake", user_id, uuid)])
        if not queued:
            raise LookupError(f"peer {uuid!r} left this bus before the job could be queued")

    @_failures_are_store_errors
    async def withdraw(self, user_id: str, uuid: str, job_id: str) -> bool:
        base = self.shared.user(user_id)
        return bool(await self.shared.run("withdraw", _WITHDRAW, [base + "q:" + uuid, base + "qp:" + uuid], [job_id]))

    async def _take(self, user_id: str, uuid: str, token: str, ack: list[str],
                    idle_until: float) -> tuple[list[dict[str, Any]], list[str]]:
        base, now = self.shared.user(user_id), time.time()
        answer = await self.shared.run("take", _TAKE, [
            base + "peer:" + uuid, base + "q:" + uuid, base + "ul:" + uuid, base + "qp:" + uuid, self.shared.alive_key,
        ], [token, self.shared.member(user_id, uuid), idle_until, now + self.shared.grace_s, now, *ack])
        if answer is None:
            raise PeerAuthError(f"peer {uuid!r} is not registered with that token; call blender_register_client again")
        fresh_ids, ids, raw_payloads = answer
        by_id = {_s(j): json.loads(raw) for j, raw in zip(ids, raw_payloads) if raw is not None}
        fresh = [_s(j) for j in fresh_ids if by_id.get(_s(j), {}).get("message_type") != CANCEL]
        return list(by_id.values()), fresh

    @_failures_are_store_errors
    async def take(self, user_id: str, uuid: str, token: str, ack: list[str],
                   wait_s: float) -> tuple[list[dict[str, Any]], list[str]]:
        await self.shared.ready()
        key = (user_id, uuid)
        woken = self._hold(self._wakeups, key)
        try:
            # While the poll is open the peer is alive until the poll's end plus the grace period: a
            # poll that ends with nothing to hand out needs no second write.
            payloads, fresh = await self._take(user_id, uuid, token, ack, time.time() + wait_s + self.shared.grace_s)
            deadline = time.monotonic() + wait_s
            while not payloads and not self.closing and (remaining := deadline - time.monotonic()) > 0:
                try:
                    await asyncio.wait_for(woken.wait(), remaining)
                except TimeoutError:
                    break
                woken.clear()
                payloads, fresh = await self._take(
                    user_id, uuid, token, [], time.time() + deadline - time.monotonic() + self.shared.grace_s)
            return payloads, fresh
        except asyncio.CancelledError:  # the peer hung up mid-poll: it is alive for the grace period only
            await asyncio.shield(self._heard(user_id, uuid, lower=True))
            raise
        finally:
            self._unhold(self._wakeups, key)

    async def _heard(self, user_id: str, uuid: str, *, lower: bool) -> None:
        """Alive until now + grace; unless `lower`, an open poll's later deadline is kept."""
        now = time.time()
        async with self.shared.redis.pipeline(transaction=False) as pipe:
            pipe.zadd(self.shared.alive_key, {self.shared.member(user_id, uuid): now + self.shared.grace_s},
                      xx=True, gt=not lower)
            pipe.hset(self.shared.user(user_id) + "peer:" + uuid, "last_seen", now)
            await pipe.execute()

    @_failures_are_store_errors
    async def expired(self) -> list[tuple[str, str]]:
        await self.shared.ready()
        gone = await self.shared.run("expired", _EXPIRED, [self.shared.alive_key], [time.time()])
        return [self.shared.peer_of(member) for member in gone]

    def release_polls(self) -> None:
        self.closing = True
        self._wake_all()

    @_failures_are_store_errors
    async def publish(self, user_id: str, kind: str, **data: Any) -> None:
        base = self.shared.user(user_id)
        await self.shared.run("publish", _PUBLISH, [base + "evseq", base + "ev"], [
            json.dumps({"kind": kind, **data}), EVENTS_KEPT, self.shared.channel, self.shared.wire("event", user_id)])

    async def _read_events(self, user_id: str, cursor: int) -> tuple[list[BusEvent], int]:
        base = self.shared.user(user_id)
        async with self.shared.redis.pipeline(transaction=True) as pipe:
            pipe.xrange(base + "ev", f"{min(cursor, 2**62) + 1}-0", "+", count=EVENTS_KEPT)
            pipe.get(base + "evseq")
            entries, seq = await pipe.execute()
        if int(seq or 0) < cursor < 1 << 62:  # the feed started over (Redis lost its data): read it from its start
            return await self._read_events(user_id, 0)
        events = []
        for entry_id, fields in entries:
            data = json.loads(fields[b"e"])
            events.append(BusEvent(int(_s(entry_id).split("-")[0]), data.pop("kind"), data))
        return events, int(seq or 0)

    @_failures_are_store_errors
    async def events_since(self, user_id: str, cursor: int, wait_s: float) -> tuple[list[BusEvent], int]:
        await self.shared.ready()
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


class RedisNotifier:
    """Waiters live in the replica that holds the caller's request; a job's end or progress reaches
    them over the channel, and a waiter elsewhere reads the outcome from the store."""

    def __init__(self, shared: _Shared, jobs: RedisJobs) -> None:
        self.shared, self.jobs = shared, jobs
        self.waiter = JobWaiter()
        self._fetching: set[asyncio.Task[None]] = set()
        shared.handlers.append(self._on_message)
        shared.on_data_lost.append(self._all_lost)

    def _all_lost(self) -> None:
        """Redis lost every job: whoever waits here for one is told it is lost, now."""
        for user_id, job_id in self.waiter.waited_on():
            self.waiter.deliver(user_id, job_id, envelope(LOST, job_id=job_id, error=(
                f"the Redis backend ({self.shared.where}) lost its data (restarted empty, or flushed) while this"
                " job was in flight: its outcome is unknown; run it again")))

    def _on_message(self, fields: list[Any]) -> None:
        kind, *rest = fields
        if kind == "done" and rest[2] != self.shared.replica and self.waiter.waiting_on(rest[0], rest[1]):
            task = asyncio.ensure_future(self._fetch(rest[0], rest[1]))
            self._fetching.add(task)
            task.add_done_callback(self._fetching.discard)
        elif kind == "progress" and rest[2] != self.shared.replica:
            self.waiter.progress_soon(rest[0], rest[1], rest[3], rest[4])

    async def _fetch(self, user_id: str, job_id: str) -> None:
        try:
            job = await self.jobs.get(user_id, job_id)
        except JobStoreError as exc:
            log.warning("%s", exc)  # the waiter re-reads the store on its own later
            return
        if job is not None and job.status in FINAL_STATUSES:
            self.waiter.deliver(user_id, job_id, job.envelope())

    def register(self, user_id: str, job_id: str, on_progress: ProgressFn | None = None) -> asyncio.Future[dict[str, Any]]:
        return self.waiter.register(user_id, job_id, on_progress)

    def release(self, user_id: str, job_id: str, fut: asyncio.Future[dict[str, Any]],
                on_progress: ProgressFn | None = None) -> None:
        self.waiter.release(user_id, job_id, fut, on_progress)

    @_failures_are_store_errors
    async def deliver(self, user_id: str, job_id: str, outcome: dict[str, Any]) -> None:
        self.waiter.deliver(user_id, job_id, outcome)
        await self.shared.notify("done", user_id, job_id, self.shared.replica)

    @_failures_are_store_errors
    async def progress(self, user_id: str, job_id: str, fraction: float | None, message: str | None) -> None:
        await self.shared.notify("progress", user_id, job_id, self.shared.replica, fraction, message)
        await self.waiter.progress(user_id, job_id, fraction, message)

    def progress_soon(self, user_id: str, job_id: str, fraction: float | None, message: str | None) -> None:
        task = asyncio.ensure_future(self.progress(user_id, job_id, fraction, message))
        self._fetching.add(task)
        task.add_done_callback(self._fetching.discard)

    @_failures_are_store_errors
    async def acquire(self, user_id: str, limit: int) -> bool:
        await self.shared.ready()
        return bool(await self.shared.run("acquire", _ACQUIRE, [self.shared.user(user_id) + "active", self.shared.replicas_key],
                                          [time.time(), limit, self.shared.replica]))

    @_failures_are_store_errors
    async def release_call(self, user_id: str) -> None:
        await self.shared.run("release", _RELEASE, [self.shared.user(user_id) + "active"], [self.shared.replica])


def redis_backend(url: str, grace_s: float, **retention: Any) -> Backend:
    """The Redis backend at `url` (redis://HOST:PORT/DB?prefix=NAME)."""
    shared = _Shared(url, grace_s)
    jobs = RedisJobs(shared, **retention)
    return Backend(jobs=jobs, peers=RedisPeers(shared), notifier=RedisNotifier(shared, jobs), name="redis",
                   shared=True, start=shared.ready)
