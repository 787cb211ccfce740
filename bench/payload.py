"""Payload scaling: results of growing size, end to end, with the peak memory of server and peer.

    python -m bench.payload [--sizes-kib 1 1024 16384 65536] [--runs 3]

A Python test peer returns a string of the given size (`blender_test_size`); the client receives
it over streamable HTTP. For each size: median wall time, throughput, and how far the server's and
the peer's peak resident set (VmHWM, reset before each size) rose above their resident set before.
Every size runs twice: with the default tool result (the envelope also as JSON text), and with the
server told to send results over 1 MiB only once (`--text-result-max-bytes`).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from blendbus import eventloop
from blendbus.client import connect

from . import _procs

KIB = 1024


TEXT_CAP = 1024 * 1024
"""The second pass runs the server with `text_result_max_bytes` at this size."""


WHOLE = {"inline_result_max_bytes": None}
"""Results sent whole (`--inline-result-max-bytes 0`): what this benchmark measures is one result's
trip end to end; by default a result over 256 KiB comes back in pages instead."""


async def run(sizes_kib: list[int], runs: int) -> list[dict[str, Any]]:
    """Every size twice: the envelope also as JSON text, then results over 1 MiB sent once, in
    structuredContent (`blendbus serve --text-result-max-bytes`)."""
    return [row | {"text": "always"} for row in await _run(sizes_kib, runs, WHOLE)] + [
        row | {"text": "≤ 1 MiB"} for row in await _run(sizes_kib, runs, {**WHOLE, "text_result_max_bytes": TEXT_CAP})]


async def _run(sizes_kib: list[int], runs: int, limits: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        server, url = _procs.start_server(Path(tmp) / "state", limits=limits)
        peer = _procs.start_python_peer(url, "py-peer", concurrency=1)
        try:
            async with connect(url) as client:
                for size_kib in sizes_kib:
                    nbytes = size_kib * KIB - 2  # the result cap counts the encoded string's quotes
                    args = {"nbytes": nbytes, "target_uuid": "py-peer", "timeout_s": 300}
                    base = {name: _procs.rss_kib(proc.pid) for name, proc in (("server", server), ("peer", peer))}
                    for proc in (server, peer):
                        _procs.reset_peak_rss(proc.pid)
                    times = []
                    for _ in range(runs):
                        t0 = time.perf_counter()
                        result = await client.call_tool("blender_test_size", args)
                        times.append(time.perf_counter() - t0)
                        if result.is_error or len(result.structured_content["result"]) != nbytes:
                            raise RuntimeError(f"{size_kib} KiB result did not arrive whole")
                        del result
                    peaks = {name: _procs.peak_rss_kib(proc.pid) for name, proc in (("server", server), ("peer", peer))}
                    rows.append({"size_kib": size_kib, "median_s": statistics.median(times), "runs": runs,
                                 "rss_before_kib": base, "peak_kib": peaks})
        finally:
            _procs.stop(peer, server)
    return rows


def size_label(kib: int) -> str:
    return f"{kib // 1024} MiB" if kib >= 1024 else f"{kib} KiB"


def table(rows: list[dict[str, Any]]) -> str:
    lines = ["| result as JSON text | result | median ms | MiB/s | server RSS before MiB | server peak MiB"
             " | server peak rise ÷ payload | peer RSS before MiB | peer peak MiB | peer peak rise ÷ payload |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        payload = r["size_kib"]
        cells = [r["text"], size_label(payload), f"{r['median_s'] * 1000:.1f}",
                 f"{payload / 1024 / r['median_s']:.1f}"]
        for name in ("server", "peer"):
            before, peak = r["rss_before_kib"][name], r["peak_kib"][name]
            # Below 1 MiB the rise is page-granular noise: a ratio would mean nothing.
            ratio = f"{max(0, peak - before) / payload:.2f}×" if payload >= 1024 else "—"
            cells += [f"{before / 1024:.0f}", f"{peak / 1024:.0f}", ratio]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes-kib", type=int, nargs="+", default=[1, 1024, 16 * 1024, 64 * 1024])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    print(table(eventloop.run(run(args.sizes_kib, args.runs))))


if __name__ == "__main__":
    main()
