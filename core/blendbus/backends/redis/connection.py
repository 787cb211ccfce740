"""One replica's link to Redis: the connection pool, the notification channel it listens on, its
heartbeat among the live replicas, and the epoch that tells it Redis lost its data."""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

import redis.asyncio as aioredis
from redis.asyncio.cluster import ClusterNode
from redis.exceptions import RedisError

from ..base import JobStoreError
from . import scripts
from .keys import Keys, parse_url

log = logging.getLogger(__name__)

REPLICA_TTL_S = 10.0
"""A replica that has not said it is alive for this long no longer counts, nor do the calls it served
(their leases lapse: see `RedisNotifier`)."""
READY_WAIT_S = 10.0
"""How long a replica waits for Redis when it starts (or reconnects) before saying it does not answer."""
CLOSE_WAIT_S = 2.0
"""Longest each step of closing the backend may take."""
MAX_CONNECTIONS = 128
"""Connections one replica opens to Redis at most; more concurrent commands wait for one (10 s at most)."""

T = TypeVar("T")
SENTINEL_SCHEME = "redis+sentinel://"
SENTINEL_TIMEOUT_S = 2.0
"""How long a question to one sentinel (where is the master?) may take before the next is asked."""


CLUSTER_SCHEME = "redis+cluster://"


def _hosts(url: str, what: str) -> tuple[list[tuple[str, int]], dict[str, str]]:
    """The `HOST:PORT,HOST:PORT` list of a sentinel or cluster URL, and its query."""
    parts = urlsplit(url)
    hosts = []
    for item in parts.netloc.rpartition("@")[2].split(","):
        host, _, port = item.rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"{url!r}: list the {what} as HOST:PORT,HOST:PORT")
        hosts.append((host.strip("[]"), int(port)))
    return hosts, dict(pair.partition("=")[::2] for pair in parts.query.split("&") if pair)


def _cluster(url: str) -> tuple[aioredis.RedisCluster, str]:
    """`redis+cluster://HOST:PORT[,HOST:PORT...][/?password=...]`: redis-py's cluster client, which
    learns the slots from any node listed and follows them as they move (a reshard, a failover).
    Every script touches one user's keys, which share a hash tag (keys.py), so it runs on one node."""
    hosts, query = _hosts(url, "cluster's nodes")
    options: dict[str, Any] = {"password": query["password"]} if query.get("password") else {}
    client = aioredis.RedisCluster(startup_nodes=[ClusterNode(host, port) for host, port in hosts],
                                   max_connections=MAX_CONNECTIONS, health_check_interval=30, **options)
    return client, f"cluster {','.join(f'{h}:{p}' for h, p in hosts)}"


def _through_sentinels(url: str) -> tuple[aioredis.Redis, str]:
    """`redis+sentinel://HOST:PORT[,HOST:PORT...]/MASTER[?db=N&password=...]`: a client that asks the
    sentinels where the master is, and asks again after a failover (its connections then fail, and
    the next ones go to the promoted replica). Returns the client and how messages name it."""
    hosts, query = _hosts(url, "sentinels")
    master = urlsplit(url).path.strip("/")
    if not master:
        raise ValueError(f"{url!r}: name the master after the sentinels: redis+sentinel://HOST:PORT/MASTER")
    options: dict[str, Any] = {"db": int(query.get("db", 0))}
    if query.get("password"):
        options["password"] = query["password"]
    sentinels = aioredis.Sentinel(hosts, socket_timeout=SENTINEL_TIMEOUT_S, **options)
    client = sentinels.master_for(master, redis_class=aioredis.Redis, max_connections=MAX_CONNECTIONS,
                                  health_check_interval=30, **options)
    return client, f"master {master!r} of sentinels {','.join(f'{h}:{p}' for h, p in hosts)}"


def store_errors(fn: Callable[..., Awaitable[T]]) -> Callable[..., Awaitable[T]]:
    """Redis being down is the backend failing, said in one backend-neutral error."""

    @functools.wraps(fn)
    async def wrapper(self: Any, *args: Any, **kwargs: Any) -> T:
        try:
            return await fn(self, *args, **kwargs)
        except RedisError as exc:
            raise JobStoreError(f"the Redis backend ({self.link.where}) failed: {exc}") from exc

    return wrapper


class Connection:
    """What the parts of one backend share: the client, the keys, this replica's identity and the
    channel's listeners (`handlers`, called with each message)."""

    def __init__(self, url: str, grace_s: float) -> None:
        connect_url, prefix = parse_url(url)
        self.keys = Keys(prefix)
        self.redis: aioredis.Redis | aioredis.RedisCluster
        if connect_url.startswith(SENTINEL_SCHEME):
            self.redis, self.where = _through_sentinels(connect_url)
        elif connect_url.startswith(CLUSTER_SCHEME):
            self.redis, self.where = _cluster(connect_url)
        else:
            parts = urlsplit(connect_url)
            self.where = f"{parts.hostname}:{parts.port or 6379}{parts.path or '/0'}"  # no password in messages
            # A bounded pool that makes a burst wait its turn (redis-py's default pool fails it instead).
            pool = aioredis.BlockingConnectionPool.from_url(connect_url, max_connections=MAX_CONNECTIONS, timeout=10,
                                                            health_check_interval=30)
            self.redis = aioredis.Redis(connection_pool=pool)
        self.grace_s = grace_s
        self.replica = secrets.token_hex(6)
        self.handlers: list[Callable[[list[Any]], None]] = []
        self.on_reconnect: list[Callable[[], None]] = []
        self.on_beat: list[Callable[[], Awaitable[None]]] = []
        """Called at each heartbeat (every `REPLICA_TTL_S / 5`): leases this replica keeps alive."""
        self.on_data_lost: list[Callable[[], None]] = []
        """Called when Redis turns out to have lost everything (restarted empty, flushed): see `check_epoch`."""
        self.epoch: bytes | None = None
        """The random value this replica found (or put) at the epoch key: it changes only when Redis lost its data."""
        self._listener: asyncio.Task[None] | None = None
        self._heartbeat: asyncio.Task[None] | None = None
        self._subscribed: asyncio.Event | None = None

    async def run(self, script: str, keys: list[str], args: list[Any],
                  also: Callable[[Any], None] | None = None) -> Any:
        """Run a Lua script (scripts.run)."""
        return await scripts.run(self.redis, script, keys, args, also)

    def message(self, *fields: Any) -> str:
        """A notification as it travels on the channel."""
        return json.dumps(fields)

    async def notify(self, *fields: Any) -> None:
        await self.redis.publish(self.keys.channel, self.message(*fields))

    async def check_epoch(self) -> bool:
        """Whether Redis still holds what this replica saw there; sets the epoch key when it is missing.
        A Redis without persistence that restarts, or a flush, loses every registration and job: the
        first replica to notice writes a new epoch, and every replica tells its waits (`on_data_lost`)."""
        found = await self.redis.set(self.keys.epoch, secrets.token_hex(8), nx=True, get=True)
        current = found if found is not None else await self.redis.get(self.keys.epoch)
        kept = self.epoch is None or current == self.epoch
        self.epoch = current
        if not kept:
            log.warning("the Redis backend (%s) lost its data (restarted empty, or flushed): peers re-register,"
                        " jobs in flight are lost", self.where)
            for fn in self.on_data_lost:
                fn()
        return kept

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
                await self.redis.zadd(self.keys.replicas, {self.replica: time.time() + REPLICA_TTL_S})
                await self.redis.zremrangebyscore(self.keys.replicas, "-inf", time.time() - 3600)
                await self.check_epoch()
                for fn in self.on_beat:
                    await fn()
            except RedisError as exc:
                log.warning("Redis backend: heartbeat failed (%s)", exc)
            await asyncio.sleep(REPLICA_TTL_S / 5)

    async def _listen(self) -> None:
        assert self._subscribed is not None
        first = True
        while True:
            pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self.keys.channel)
                await self.redis.zadd(self.keys.replicas, {self.replica: time.time() + REPLICA_TTL_S})
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
        for step in (self.redis.zrem(self.keys.replicas, self.replica), self.redis.aclose()):
            try:
                await asyncio.wait_for(step, CLOSE_WAIT_S)
            except (RedisError, TimeoutError, OSError):
                pass
