"""Paging a large result the way every client does by default: the first page inline, then
`blender_get_job(job_id, offset=next_offset)` until `next_offset` is null.

    python -m bench.paging [--sizes-mib 1 16 64] [--backend sqlite|redis] [--length BYTES]

For each size: the pages, the first call (the result made on the peer, carried to the server and
stored, its first page back), the median time of one page (which must not grow with the result),
the MiB/s of the pages after the first, and the whole loop's MiB/s. With `--length`, the client asks for
pages of that size (up to paging.MAX_PAGE_BYTES) instead of the server's default. A Python test peer returns the string (`blender_test_size`); server, peer and
client are separate processes.
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
from blendbus.paging import DEFAULT_INLINE_RESULT_MAX_BYTES
from blendbus.testing.redis import fresh_prefix, redis_server, remove_prefix, with_prefix

from . import _procs

MIB = 1024 * 1024


async def run(sizes_mib: list[float], backend: str = "sqlite", length: int | None = None) -> list[dict[str, Any]]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        if backend == "redis":
            with redis_server() as base:
                prefix = fresh_prefix("paging")
                try:
                    return await _run(sizes_mib, with_prefix(base, prefix), Path(tmp), length)
                finally:
                    remove_prefix(base, prefix)
        rows = await _run(sizes_mib, "sqlite", Path(tmp), length)
    return rows


async def _run(sizes_mib: list[float], backend: str, tmp: Path, length: int | None) -> list[dict[str, Any]]:
    server, url = _procs.start_server(tmp / "state", backend=backend)
    peer = _procs.start_python_peer(url, "py-peer", concurrency=1)
    rows = []
    try:
        async with connect(url) as client:
            for size in sizes_mib:
                nbytes = int(size * MIB) - 16  # the result cap (64 MiB) counts the encoded string's quotes
                t0 = time.perf_counter()
                first = await client.call_tool("blender_test_size", {"nbytes": nbytes, "timeout_s": 600})
                first_s = time.perf_counter() - t0
                env = first.structured_content
                received, offset, page_times = len(env["result"].encode()), env.get("next_offset"), []
                while offset is not None:
                    p0 = time.perf_counter()
                    page = (await client.call_tool("blender_get_job", {"job_id": env["job_id"], "offset": offset,
                                                                         **({"length": length} if length else {})}))
                    page_times.append(time.perf_counter() - p0)
                    received += len(page.structured_content["result"].encode())
                    offset = page.structured_content["next_offset"]
                whole = time.perf_counter() - t0
                if received != nbytes:
                    raise RuntimeError(f"{size} MiB: {received} bytes arrived")
                rows.append({"size_mib": size, "page_kib": (length or DEFAULT_INLINE_RESULT_MAX_BYTES) // 1024,
                             "pages": len(page_times) + 1, "first_s": first_s,
                             "pages_mib_per_s": (nbytes - len(env["result"].encode())) / MIB / sum(page_times)
                             if page_times else 0.0,
                             "page_ms": statistics.median(page_times) * 1000 if page_times else 0.0,
                             "whole_s": whole, "mib_per_s": nbytes / MIB / whole})
    finally:
        _procs.stop(peer, server)
    return rows


def table(rows: list[dict[str, Any]], backend: str = "sqlite") -> str:
    lines = [f"| result ({backend}) | page | pages | first call | one page (median) | pages after the first | whole paged loop"
             " | MiB/s |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['size_mib']:g} MiB | {r.get('page_kib', 256):,} KiB | {r['pages']} | {r['first_s']:.2f} s | {r['page_ms']:.1f} ms |"
                     f" {r['pages_mib_per_s']:.1f} MiB/s | {r['whole_s']:.2f} s | {r['mib_per_s']:.1f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes-mib", type=float, nargs="+", default=[1, 16, 64])
    parser.add_argument("--backend", choices=["sqlite", "redis"], default="sqlite")
    parser.add_argument("--length", type=int, help="bytes per page the client asks for (default: the server's)")
    args = parser.parse_args()
    print(table(eventloop.run(run(args.sizes_mib, args.backend, args.length)), args.backend))


if __name__ == "__main__":
    main()
