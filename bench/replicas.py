"""The Redis backend beside SQLite, and 1, 2 and 3 replicas on one Redis.

    python -m bench.replicas [--seconds 5] [--idle-peers 100]

Every server, peer and client is its own process on 127.0.0.1. Reported from one run:

- the no-op round trip p50 at concurrency 1 and calls/s at concurrency 64, SQLite backend vs Redis
  backend (one server each);
- Redis round trips and commands per dispatched call, counted on the wire (a proxy between the
  server and Redis: a pipeline or a script is one round trip) and by Redis (`INFO stats`), with the
  server's idle background (heartbeats, the reaper) measured first and subtracted;
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
from urllib.parse import urlsplit

from blendbus import eventloop
from blendbus.testing.redis import fresh_prefix, redis_server, remove_prefix, with_prefix

from . import _procs
from ._wire import TurnCounter

LEVELS = (16, 64)


def _redis_commands(url: str) -> int:
    import redis

    from blendbus.backends.redis import parse_url

    client = redis.Redis.from_url(parse_url(url)[0])
    try:
        return int(client.info("stats")["total_commands_processed"])
    finally:
        client.close()


async def _noop(backend: str, state: Path, seconds: float) -> dict[int, dict[str, Any]]:
    """The no-op at concurrency 1 and 64 through one server on `backend`."""
    server, url = _procs.start_server(state, backend=backend)
    peer = _procs.start_python_peer(url, f"py-peer-{state.name}", concurrency=64)
    try:
        return {c: await _procs.measure(url, "blender_test_noop", {}, c, seconds, pids={"server": server.pid})
                for c in (1, 64)}
    finally:
        _procs.stop(peer, server)


async def _per_call(redis_url: str, prefix: str, state: Path, seconds: float) -> dict[str, Any]:
    """Redis round trips and commands per no-op call (concurrency 1), background subtracted."""
    port = urlsplit(redis_url).port or 6379
    with TurnCounter(port) as wire:
        proxied = with_prefix(redis_url.replace(f":{port}", f":{wire.port}", 1), prefix)
        server, url = _procs.start_server(state, backend=proxied)
        peer = None
        try:
            peer = _procs.start_python_peer(url, f"trips-{state.name}")
            await _procs.measure(url, "blender_test_noop", {}, 1, 1.0)  # registered, scripts loaded, polls open

            def sample() -> tuple[float, int, int]:
                return time.monotonic(), wire.turns, _redis_commands(redis_url)

            t0, turns0, commands0 = sample()
            await asyncio.sleep(seconds)
            t1, turns1, commands1 = sample()
            r = await _procs.measure(url, "blender_test_noop", {}, 1, seconds)
            t2, turns2, commands2 = sample()
        finally:
            _procs.stop(*(proc for proc in (peer, server) if proc is not None))
    idle_turns, idle_commands = (turns1 - turns0) / (t1 - t0), (commands1 - commands0 - 1) / (t1 - t0)
    calls = max(r["calls"], 1)
    return {"calls": r["calls"], "idle_round_trips_per_s": idle_turns,
            "round_trips_per_call": (turns2 - turns1 - idle_turns * (t2 - t1)) / calls,
            "commands_per_call": (commands2 - commands1 - 1 - idle_commands * (t2 - t1)) / calls}


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
        prefix, counted = fresh_prefix("bench"), fresh_prefix("bench-trips")  # the count's server is alone on its own
        redis_url = with_prefix(base, prefix)
        try:
            sqlite = await _noop("sqlite", Path(tmp) / "sqlite", seconds)
            shared = await _noop(redis_url, Path(tmp) / "redis", seconds)
            per_call = await _per_call(base, counted, Path(tmp) / "trips", seconds)
            scaling = [row for n in (1, 2, 3) for row in await _replicas(redis_url, n, Path(tmp), seconds)]
            idle = await _idle(redis_url, idle_peers, Path(tmp), idle_s)
        finally:
            remove_prefix(base, prefix)
            remove_prefix(base, counted)
    return {"p50": {"sqlite_ms": sqlite[1]["p50_ms"], "redis_ms": shared[1]["p50_ms"],
                    "sqlite_server_cpu_ms": sqlite[1]["cpu_ms_per_call"]["server"],
                    "redis_server_cpu_ms": shared[1]["cpu_ms_per_call"]["server"]},
            "c64": {"sqlite_calls_per_s": sqlite[64]["calls_per_s"], "redis_calls_per_s": shared[64]["calls_per_s"]},
            "per_call": per_call, "scaling": scaling, "idle": idle}


def tables(result: dict[str, Any]) -> str:
    p50, c64, per_call = result["p50"], result["c64"], result["per_call"]
    ratio = p50["redis_ms"] / p50["sqlite_ms"]
    rate = c64["redis_calls_per_s"] / c64["sqlite_calls_per_s"]
    lines = ["| backend | no-op p50 ms (concurrency 1) | server CPU ms per call | calls/s (concurrency 64) |",
             "|---|---|---|---|",
             f"| sqlite (in-process) | {p50['sqlite_ms']:.2f} | {p50['sqlite_server_cpu_ms']:.2f} |"
             f" {c64['sqlite_calls_per_s']:.0f} |",
             f"| redis | {p50['redis_ms']:.2f} ({ratio:.2f}×) | {p50['redis_server_cpu_ms']:.2f} |"
             f" {c64['redis_calls_per_s']:.0f} ({rate:.2f}×) |", "",
             f"Per dispatched no-op on Redis: {per_call['round_trips_per_call']:.2f} round trips and"
             f" {per_call['commands_per_call']:.1f} commands (scripts' inner commands included), over"
             f" {per_call['calls']} calls; the idle background ({per_call['idle_round_trips_per_s']:.1f} round trips/s)"
             " subtracted.", "",
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
