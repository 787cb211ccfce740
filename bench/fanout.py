"""Fan-out: many connected idle peers, ten users calling; what each idle peer costs the server.

    python -m bench.fanout [--idle 1 10 100 500] [--seconds 5] [--idle-seconds 10]

Ten users (each with its own token and bus) each have one active Python test peer and call it back
to back. Idle peers, spread over the ten users, are added level by level. At each level: the
latency of the users' calls, the server's RSS per idle peer (against the level with none), and the
server's CPU while nobody calls, measured over --idle-seconds after the peers have settled.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
from pathlib import Path
from typing import Any

from blendbus import eventloop

from . import _procs

USERS = 10


async def run(levels: list[int], seconds: float, idle_seconds: float) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        tokens = {f"token-{u}": f"user{u}" for u in range(USERS)}
        (Path(tmp) / "tokens.json").write_text(json.dumps(tokens))
        server, url = _procs.start_server(Path(tmp) / "state", tokens=Path(tmp) / "tokens.json")
        procs = [_procs.start_peers(url, [f"active-{u}" for u in range(USERS)], list(tokens))]
        try:
            await asyncio.sleep(2)
            base_rss = _procs.rss_kib(server.pid)
            idle = 0
            for level in levels:
                uuids = [f"idle-{i}" for i in range(idle, level)]
                if uuids:
                    procs.append(_procs.start_peers(url, uuids, [f"token-{i % USERS}" for i in range(idle, level)],
                                                    concurrency=1))
                idle = level
                await asyncio.sleep(3)  # registrations done, every peer's first poll open
                cpu0 = _procs.cpu_s(server.pid)
                await asyncio.sleep(idle_seconds)
                idle_cpu = (_procs.cpu_s(server.pid) - cpu0) / idle_seconds
                rss = _procs.rss_kib(server.pid)
                calls = await asyncio.gather(*(
                    _procs.measure(url, "blender_test_noop", {"target_uuid": f"active-{u}"}, 1, seconds,
                                   token=f"token-{u}") for u in range(USERS)))
                latencies = [c for call in calls for c in call["latencies"]]
                rows.append({"idle_peers": level, "idle_cpu": idle_cpu, "server_rss_kib": rss,
                             "rss_per_peer_kib": (rss - base_rss) / level if level else 0.0,
                             "calls_per_s": sum(c["calls_per_s"] for c in calls)} | _procs.summarize(latencies))
        finally:
            _procs.stop(*procs, server)
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    lines = ["| idle peers | server idle CPU | server RSS MiB | server RSS per added idle peer KiB"
             " | 10 users: calls/s | p50 ms | p99 ms |", "|---|---|---|---|---|---|---|"]
    previous = None
    for r in rows:
        # Per peer added since the previous level: the larger the step, the less allocator noise.
        per_peer = r["rss_per_peer_kib"] if previous is None else (
            (r["server_rss_kib"] - previous["server_rss_kib"]) / (r["idle_peers"] - previous["idle_peers"]))
        lines.append(f"| {r['idle_peers']} | {r['idle_cpu'] * 100:.2f}% | {r['server_rss_kib'] / 1024:.0f} |"
                     f" {per_peer:.0f} | {r['calls_per_s']:.0f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} |")
        previous = r
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--idle", type=int, nargs="+", default=[1, 10, 100, 500])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--idle-seconds", type=float, default=60.0,
                        help="the idle window; longer than the 45 s keep-alive ping interval, so it counts pings")
    args = parser.parse_args()
    print(table(eventloop.run(run(args.idle, args.seconds, args.idle_seconds))))


if __name__ == "__main__":
    main()
