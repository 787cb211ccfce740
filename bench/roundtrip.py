"""Round trip of a no-op command through a peer, next to the floor of a server-only tool.

    python -m bench.roundtrip [--seconds 5] [--concurrency 1 16] [--blender]

Server, peer and client run in separate processes on 127.0.0.1 over streamable HTTP.
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import tempfile
from pathlib import Path

from . import _procs


async def run(seconds: float, levels: list[int], blender: bool) -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        server, url = _procs.start_server(Path(tmp) / "state")
        peers = [_procs.start_python_peer(url, "py-peer")]
        try:
            for c in levels:
                floor = await _procs.measure(url, "blender_list_clients", {}, c, seconds)
                noop = await _procs.measure(url, "blender_test_noop", {"target_uuid": "py-peer"}, c, seconds)
                rows.append({"peer": "python", "concurrency": c, "floor": floor, "noop": noop})
            if blender:
                peers.append(_procs.start_blender_peer(url, "bpy-peer", Path(tmp) / "bpy"))
                for c in levels:
                    floor = await _procs.measure(url, "blender_list_clients", {}, c, seconds)
                    noop = await _procs.measure(url, "blender_test_noop", {"target_uuid": "bpy-peer"}, c, seconds)
                    rows.append({"peer": "bpy", "concurrency": c, "floor": floor, "noop": noop})
        finally:
            _procs.stop(*peers, server)
    return rows


def table(rows: list[dict]) -> str:
    lines = ["| peer | concurrency | floor p50 ms | floor p99 ms | floor calls/s | no-op p50 ms | no-op p99 ms"
             " | no-op calls/s | p50 ratio |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        f, n = r["floor"], r["noop"]
        lines.append(f"| {r['peer']} | {r['concurrency']} | {f['p50_ms']:.2f} | {f['p99_ms']:.2f} |"
                     f" {f['calls_per_s']:.0f} | {n['p50_ms']:.2f} | {n['p99_ms']:.2f} | {n['calls_per_s']:.0f} |"
                     f" {n['p50_ms'] / f['p50_ms']:.2f}x |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--blender", action="store_true", help="also through a real bpy peer")
    args = parser.parse_args()
    rows = asyncio.run(run(args.seconds, args.concurrency, args.blender))
    print(f"machine: {platform.machine()}, {platform.python_implementation()} {platform.python_version()}")
    print(table(rows))


if __name__ == "__main__":
    main()
