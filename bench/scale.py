"""Many replicas, many peers: the Redis backend at the scale a studio runs it, simulated.

    python -m bench.scale [--replicas 10] [--peers 100 1000] [--users 50] [--callers 64] [--seconds 15]
                          [--idle-seconds 15] [--cluster]

For each peer count: `--replicas` servers (`blendbus serve`'s app with the test plugin) on one Redis
of their own (or a Redis Cluster of three masters), `--peers` Python test peers (lightweight asyncio
peers, one process per replica, not Blenders) spread over `--users` users, each peer polling one
replica. First nothing calls (idle), then `--callers` LLM sessions, spread over the users and the
replicas, call a no-op on one of their user's peers, always one polling another replica.

Printed: calls/s, p50 and p99; calls not answered (must be 0); Redis commands/s and memory; the
replicas' RSS and CPU; and, while idle, what the peers' polls cost (Redis commands/s, replica CPU),
in all and per peer, which should stay flat as peers grow. Every process runs on this machine: the
replicas, the peers and the callers share its cores.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from blendbus import eventloop
from blendbus.testing.redis import client_for, cluster_group, fresh_prefix, redis_server, remove_prefix, with_prefix

from . import _procs


def _redis_stats(url: str) -> tuple[int, int]:
    """(commands processed, bytes used) over every node of the Redis at `url`."""
    client = client_for(url)
    try:
        stats, memory = client.info("stats"), client.info("memory")
        if "total_commands_processed" in stats:  # one server
            return int(stats["total_commands_processed"]), int(memory["used_memory"])
        return (sum(int(node["total_commands_processed"]) for node in stats.values()),  # a cluster: per node
                sum(int(node["used_memory"]) for node in memory.values()))
    finally:
        client.close()


def _cpu(pids: list[int]) -> float:
    return sum(_procs.cpu_s(pid) for pid in pids)


async def _calls(urls: list[str], peers: dict[int, list[tuple[str, int]]], users: int, callers: int,
                 seconds: float) -> dict[str, Any]:
    """`callers` sessions calling a no-op for `seconds`; caller i is user i % users, on replica i % replicas,
    aiming at a peer of that user that polls another replica. Failures are counted, not raised."""
    from blendbus.client import connect

    failed: list[str] = []

    @contextlib.asynccontextmanager
    async def session(index: int) -> Any:
        user, replica = index % users, index % len(urls)
        mine = [uuid for uuid, at in peers[user] if at != replica] or [uuid for uuid, _ in peers[user]]
        async with connect(urls[replica], f"t{user}") as client:
            target = {"target_uuid": mine[index % len(mine)]}

            async def call() -> None:
                try:
                    result = await client.call_tool("blender_test_noop", target)
                    if result.is_error:
                        failed.append(str((result.structured_content or {}).get("status")))
                except Exception as exc:  # noqa: BLE001 - a call that got no answer is what this counts
                    failed.append(type(exc).__name__)
            yield call

    measured = await _procs.run_sessions(session, callers, seconds)
    measured.pop("latencies")
    return measured | {"not_answered": len(failed), "failures": sorted(set(failed))}


async def one_scale(base: str, replicas: int, peers: int, users: int, callers: int, seconds: float,
                    idle_seconds: float, tmp: Path) -> dict[str, Any]:
    prefix = fresh_prefix("scale")
    url = with_prefix(base, prefix)
    tokens = tmp / f"tokens-{peers}.json"
    tokens.write_text(json.dumps({f"t{u}": f"user{u}" for u in range(users)}))
    servers = [_procs.start_server(tmp / f"p{peers}-r{n}", tokens=tokens, backend=url) for n in range(replicas)]
    urls = [address for _, address in servers]
    placed: dict[int, list[tuple[str, int]]] = {u: [] for u in range(users)}
    by_replica: dict[int, list[tuple[str, str]]] = {n: [] for n in range(replicas)}
    for i in range(peers):
        user, replica = i % users, i % replicas
        placed[user].append((f"peer-{i}", replica))
        by_replica[replica].append((f"peer-{i}", f"t{user}"))
    groups: list[Any] = []
    try:
        started = time.monotonic()
        for replica, members in by_replica.items():
            if members:
                groups.append(await asyncio.to_thread(
                    _procs.start_peers, urls[replica], [uuid for uuid, _ in members], [t for _, t in members], 2))
        startup_s = time.monotonic() - started
        server_pids = [proc.pid for proc, _ in servers]
        await asyncio.sleep(5)  # every peer in its long poll
        commands, _ = _redis_stats(base)
        cpu, t0 = _cpu(server_pids), time.monotonic()
        await asyncio.sleep(idle_seconds)
        elapsed = time.monotonic() - t0
        idle_commands = (_redis_stats(base)[0] - commands) / elapsed
        idle_cpu = (_cpu(server_pids) - cpu) / elapsed * 100
        commands, _ = _redis_stats(base)
        cpu, t0 = _cpu(server_pids), time.monotonic()
        load = await _calls(urls, placed, users, callers, seconds)
        elapsed = time.monotonic() - t0
        load_commands = (_redis_stats(base)[0] - commands) / elapsed
        load_cpu = (_cpu(server_pids) - cpu) / elapsed * 100
        memory = _redis_stats(base)[1]
        rss = [_procs.rss_kib(pid) for pid in server_pids]
    finally:
        _procs.stop(*groups, *(proc for proc, _ in servers))
        remove_prefix(base, prefix)
    return {"replicas": replicas, "peers": peers, "users": users, "callers": callers, "peers_started_s": startup_s,
            "calls_per_s": load["calls_per_s"], "p50_ms": load["p50_ms"], "p99_ms": load["p99_ms"],
            "calls": load["calls"], "not_answered": load["not_answered"], "failures": load["failures"],
            "redis_commands_per_s": load_commands, "redis_memory_mib": memory / 2**20,
            "replica_rss_mib": {"each_max": max(rss) / 1024, "all": sum(rss) / 1024},
            "replica_cpu_percent": load_cpu,
            "idle": {"redis_commands_per_s": idle_commands, "per_peer_redis_commands_per_s": idle_commands / peers,
                     "replica_cpu_percent": idle_cpu, "per_peer_replica_cpu_percent": idle_cpu / peers}}


async def run(replicas: int, peers: list[int], users: int, callers: int, seconds: float, idle_seconds: float,
              cluster: bool) -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        base = stack.enter_context(cluster_group()).url if cluster else stack.enter_context(redis_server(own=True))
        return [await one_scale(base, replicas, count, users, callers, seconds, idle_seconds, Path(tmp))
                for count in peers]


def table(rows: list[dict[str, Any]]) -> str:
    lines = ["| replicas | peers | users | calls/s | p50 ms | p99 ms | not answered | Redis cmd/s | Redis MiB"
             " | replica RSS MiB (max, all) | replicas CPU % | idle: Redis cmd/s (per peer)"
             " | idle: replicas CPU % (per peer) |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        idle = r["idle"]
        lines.append(
            f"| {r['replicas']} | {r['peers']} | {r['users']} | {r['calls_per_s']:.0f} | {r['p50_ms']:.1f} |"
            f" {r['p99_ms']:.1f} | {r['not_answered']} | {r['redis_commands_per_s']:.0f} |"
            f" {r['redis_memory_mib']:.1f} |"
            f" {r['replica_rss_mib']['each_max']:.0f}, {r['replica_rss_mib']['all']:.0f} |"
            f" {r['replica_cpu_percent']:.0f} | {idle['redis_commands_per_s']:.0f}"
            f" ({idle['per_peer_redis_commands_per_s']:.3f}) | {idle['replica_cpu_percent']:.1f}"
            f" ({idle['per_peer_replica_cpu_percent']:.4f}) |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--replicas", type=int, default=10)
    parser.add_argument("--peers", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--callers", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--idle-seconds", type=float, default=15)
    parser.add_argument("--cluster", action="store_true", help="on a Redis Cluster of three masters")
    args = parser.parse_args()
    rows = eventloop.run(run(args.replicas, args.peers, args.users, args.callers, args.seconds, args.idle_seconds,
                             args.cluster))
    print(json.dumps(rows, indent=2))
    print(table(rows))
    raise SystemExit(1 if any(r["not_answered"] for r in rows) else 0)


if __name__ == "__main__":
    main()
