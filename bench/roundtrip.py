"""Round trip of a no-op command through a peer, next to two floors on the same server.

    python -m bench.roundtrip [--seconds 5] [--concurrency 1 16 64] [--blender]

Server, peer and client run in separate processes on 127.0.0.1 over streamable HTTP. The floors:
`blender_list_clients` (an MCP tool the server answers itself) and GET /healthz (bare HTTP on the
same uvicorn app). The CPU columns say where a no-op call's work happens, per process.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

from blendbus import eventloop

from . import _procs


async def run(seconds: float, levels: list[int], blender: bool) -> list[dict[str, Any]]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        server, url = _procs.start_server(Path(tmp) / "state")
        peers = [_procs.start_python_peer(url, "py-peer")]
        kinds = [("python", "py-peer", peers[0])]
        try:
            if blender:
                peers.append(_procs.start_blender_peer(url, "bpy-peer", Path(tmp) / "bpy"))
                kinds.append(("bpy", "bpy-peer", peers[1]))
            for kind, uuid, peer in kinds:
                for c in levels:
                    http = await _procs.measure_http(url, c, seconds)
                    floor = await _procs.measure(url, "blender_list_clients", {}, c, seconds)
                    noop = await _procs.measure(url, "blender_test_noop", {"target_uuid": uuid}, c,
                                                seconds, pids={"server": server.pid, "peer": peer.pid})
                    rows.append({"peer": kind, "concurrency": c, "http": http, "floor": floor, "noop": noop})
        finally:
            _procs.stop(*peers, server)
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    lines = ["| peer | concurrency | HTTP floor p50 ms | tool floor p50 ms | tool floor calls/s | no-op p50 ms"
             " | no-op p99 ms | no-op calls/s | p50 ÷ tool floor | CPU ms per no-op: client / server / peer |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        h, f, n = r["http"], r["floor"], r["noop"]
        cpu = n["cpu_ms_per_call"]
        lines.append(f"| {r['peer']} | {r['concurrency']} | {h['p50_ms']:.2f} | {f['p50_ms']:.2f} |"
                     f" {f['calls_per_s']:.0f} | {n['p50_ms']:.2f} | {n['p99_ms']:.2f} | {n['calls_per_s']:.0f} |"
                     f" {n['p50_ms'] / f['p50_ms']:.2f}× | {cpu['client']:.2f} / {cpu['server']:.2f} /"
                     f" {cpu['peer']:.2f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 16, 64])
    parser.add_argument("--blender", action="store_true", help="also through a real bpy peer")
    args = parser.parse_args()
    print(table(eventloop.run(run(args.seconds, args.concurrency, args.blender))))


if __name__ == "__main__":
    main()
