"""The Redis backend: several `blendbus serve` replicas on one Redis act as one service.

Every piece of shared state lives in Redis, under a key prefix (`keys.py`; docs/deployment.md lists
the keys), changed by Lua scripts (`lua/`) that each run atomically in one round trip:

- a job is a hash; its status moves forward in a script (an atomic compare-and-set), which also
  keeps the user's usage counters and retention caps (`backends/sqlite.py`);
- a peer's queue is a list of job ids plus a hash of payloads, handed out until acknowledged;
  liveness is a sorted set of deadlines any replica's reaper claims atomically; the `_message_bus`
  feed is a stream per user (`peers.py`);
- one pub/sub channel wakes the replica holding a peer's poll or a caller's waiter (`notifier.py`),
  and only when that is another replica. Pub/sub drops messages only while a subscriber is
  disconnected; on reconnecting every wait here re-reads Redis, and a call's wait re-reads its job
  every `progress_every_s` anyway, so a lost wake-up costs latency, never a job;
- a dispatch takes four round trips: enqueue, the peer's poll, its reply, and its next poll
  (`backend.py`).

All keys of one user share a hash tag (`{user}`), so each script touches one slot.
"""

from __future__ import annotations

from typing import Any

from .backend import RedisBackend
from .connection import Connection
from .jobs import RedisJobs
from .keys import parse_url
from .notifier import RedisNotifier
from .peers import RedisPeers
from .records import RedisRecords


def redis_backend(url: str, grace_s: float, **retention: Any) -> RedisBackend:
    """The Redis backend at `url` (redis://HOST:PORT/DB?prefix=NAME)."""
    link = Connection(url, grace_s)
    jobs = RedisJobs(link, **retention)
    return RedisBackend(jobs=jobs, peers=RedisPeers(link), notifier=RedisNotifier(link, jobs), name="redis",
                        shared=True, start=link.ready, records=RedisRecords(link))


__all__ = ["RedisBackend", "parse_url", "redis_backend"]
