"""The Redis backend beside SQLite, and 1, 2 and 3 replicas on one Redis.

    python -m bench.replicas [--seconds 5] [--idle-peers 100]

Every server, peer and client is its own process on 127.0.0.1. Reported from one run:

- the no-op round trip p50 at concurrency 1, SQLite backend vs Redis backend (one server each);
- calls/s at concurrency 16 and 64 with 1, 2 and 3 replicas on Redis: callers are spread over the
  replicas, and each caller's peer polls another replica than the caller's (every call crosses);
- Redis commands per second with `--idle-peers` idle peers registered and polling.

On a 2-core machine the replicas share the same two cores: the rows show what sharing state through
Redis costs, not how it scales.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from blendbus import eventloop
from blendbus.testing.redis import fresh_prefix, redis_server, remove_prefix, with_prefix

from . import _procs

LEVELS = (16, 64)


def _redis_commands(url: str) -> int:
    import redis

    from blendbus.backends.redis import parse_url

    client = redis.Redis.from_url(parse_url(url)[0])
    try:
        return int(client.info("stats")["total_commands_processed"])
    finally:
        client.close()


async def _noop_p50(backend: str, state: Path, seconds: float) -> dict[str, Any]:
    server, url = _procs.start_server(state, backend=backend)
    peer = _procs.start_python_peer(url, f"py-peer-{state.name}")
    try:
        return await _procs.measure(url, "blender_test_noop", {}, 1, seconds, pids={"server": server.pid})
    finally:
        _procs.stop(peer, server)


async def _replicas(redis_url: str, count: int, tmp: Path, seconds: float) -> list[dict[str, Any]]:
    servers = [_procs.start_server(tmp / f"r{count}-{n}", backend=redis_url) for n in range(count)]
    urls = [url for _, url in servers]
    # One peer per replica; a caller on replica i calls the peer on replica i+1.
    peers = [_procs.start_python_peer(urls[n], f"peer-{count}-{n}", concurrency=64) for n in range(count)]
    rows = []
    try:
        targets = [{"target_uuid": f"peer-{count}-{(n + 1) % count}"} for n in range(count)]
        for c in LEVELS:
            r = await _procs.measure(urls, "blender_test_noop", targets, c, seconds)
            rows.append({"replicas": count, "concurrency": c, "calls_per_s": r["calls_per_s"],
                         "p50_ms": r["p50_ms"], "p99_ms": r["p99_ms"]})
    finally:
        _procs.stop(*peers, *(proc for proc, _ in servers))
    return rows


async def _idle(redis_url: str, peers: int, tmp: Path, seconds: float) -> dict[str, Any]:
    server, url = _procs.start_server(tmp / "idle", backend=redis_url)
    group = _procs.start_peers(url, [f"idle-{n}" for n in range(peers)], concurrency=1)
    try:
        await asyncio.sleep(3)  # registrations done, every peer in its long poll
        before, t0 = _redis_commands(redis_url), time.monotonic()
        await asyncio.sleep(seconds)
        rate = (_redis_commands(redis_url) - before) / (time.monotonic() - t0)
    finally:
        _procs.stop(group, server)
    return {"idle_peers": peers, "seconds": seconds, "redis_commands_per_s": rate}


async def run(seconds: float, idle_peers: int, idle_s: float = 20.0) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp, redis_server(own=True) as base:
        prefix = fresh_prefix("bench")
        redis_url = with_prefix(base, prefix)
        try:
            sqlite = await _noop_p50("sqlite", Path(tmp) / "sqlite", seconds)
            shared = await _noop_p50(redis_url, Path(tmp) / "redis", seconds)
            scaling = [row for n in (1, 2, 3) for row in await _replicas(redis_url, n, Path(tmp), seconds)]
            idle = await _idle(redis_url, idle_peers, Path(tmp), idle_s)
        finally:
            remove_prefix(base, prefix)
    return {"p50": {"sqlite_ms": sqlite["p50_ms"], "redis_ms": shared["p50_ms"],
                    "sqlite_server_cpu_ms": sqlite["cpu_ms_per_call"]["server"],
                    "redis_server_cpu_ms": shared["cpu_ms_per_call"]["server"]},
            "scaling": scaling, "idle": idle}


def tables(result: dict[str, Any]) -> str:
    p50 = result["p50"]
    ratio = p50["redis_ms"] / p50["sqlite_ms"]
    lines = ["| backend | no-op p50 ms (concurrency 1) | server CPU ms per call |", "|---|---|---|",
             f"| sqlite (in-process) | {p50['sqlite_ms']:.2f} | {p50['sqlite_server_cpu_ms']:.2f} |",
             f"| redis | {p50['redis_ms']:.2f} ({ratio:.2f}×) | {p50['redis_server_cpu_ms']:.2f} |", "",
             "| replicas (redis) | concurrency | calls/s | p50 ms | p99 ms |", "|---|---|---|---|---|"]
    for row in result["scaling"]:
        lines.append(f"| {row['replicas']} | {row['concurrency']} | {row['calls_per_s']:.0f} | {row['p50_ms']:.2f} |"
                     f" {row['p99_ms']:.2f} |")
    idle = result["idle"]
    lines += ["", f"Redis commands per second with {idle['idle_peers']} idle peers on one replica:"
                  f" {idle['redis_commands_per_s']:.1f} (over {idle['seconds']:.0f} s)"]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--idle-peers", type=int, default=100)
    parser.add_argument("--idle-seconds", type=float, default=20.0, help="how long Redis commands are counted")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = eventloop.run(run(args.seconds, args.idle_peers, args.idle_seconds))
    print(json.dumps(result, indent=2) if args.json else tables(result))


if __name__ == "__main__":
    main()
