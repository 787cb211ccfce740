"""Where the CPU goes on no-op round trips: py-spy samples of the server, the peer and the client.

    python -m bench.profile [--seconds 10] [--concurrency 64] [--top 12] [--backend redis]

Starts a server and a Python test peer, calls `blender_test_noop` from `--concurrency` sessions and
samples all three processes with py-spy (in the test extra). For each process it prints its CPU
milliseconds per call, the share of its busy samples by package, and the functions that spend the
most of it themselves. `--backend redis` puts the server on a redis-server of its own.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from blendbus import eventloop
from blendbus.testing.redis import fresh_prefix, redis_server, with_prefix

from . import _procs

IDLE = ("Runner.run", "select (selectors", "EpollSelector.select", "_worker (concurrent")
"""Leaf frames that mean waiting, not working."""


def busy_samples(raw: Path) -> collections.Counter[str]:
    """Leaf frame -> samples, from py-spy's raw (collapsed stack) output, waiting frames left out."""
    leaves: collections.Counter[str] = collections.Counter()
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        leaf = stack.split(";")[-1]
        if not any(idle in leaf for idle in IDLE):
            leaves[leaf] += int(count)
    return leaves


def package_of(frame: str) -> str:
    match = re.search(r"\(([^:)]*)", frame)
    path = match.group(1) if match else frame
    return path.split("/")[0].removesuffix(".py")


async def run(seconds: float, concurrency: int, top: int = 12, backend: str = "sqlite") -> dict[str, Any]:
    """CPU ms per call, package shares and the hottest functions of server, peer and client."""
    if backend != "redis":
        return await _run(seconds, concurrency, top, backend)
    with redis_server(own=True) as base:
        return await _run(seconds, concurrency, top, with_prefix(base, fresh_prefix()))


async def _run(seconds: float, concurrency: int, top: int, backend: str) -> dict[str, Any]:
    # Beside this interpreter first: a virtualenv's bin need not be on PATH.
    beside = Path(sys.executable).with_name("py-spy")
    spy = str(beside) if beside.exists() else shutil.which("py-spy")
    if spy is None:
        raise SystemExit("py-spy is not installed: pip install py-spy (it is in blendbus[test])")
    with tempfile.TemporaryDirectory() as tmp:
        server, url = _procs.start_server(Path(tmp) / "state", backend=backend)
        peer = _procs.start_python_peer(url, "py-peer")
        pids = {"server": server.pid, "peer": peer.pid, "client": os.getpid()}
        spies: list[subprocess.Popen] = []

        def record() -> None:  # once every session is set up: the samples are the calls alone
            spies.extend(subprocess.Popen([spy, "record", "--rate", "200", "--duration", str(max(1, int(seconds))),
                                           "--format", "raw", "--output", str(Path(tmp) / f"{name}.txt"),
                                           "--pid", str(pid)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                         for name, pid in pids.items())

        try:
            load = await _procs.measure(url, "blender_test_noop", {"target_uuid": "py-peer"}, concurrency,
                                        seconds, pids={"server": server.pid, "peer": peer.pid}, on_start=record)
            for proc in spies:
                await asyncio.to_thread(proc.wait)
            out: dict[str, Any] = {"concurrency": concurrency, "processes": {}}
            for name in pids:
                leaves = busy_samples(Path(tmp) / f"{name}.txt")
                total = sum(leaves.values()) or 1
                packages: collections.Counter[str] = collections.Counter()
                for leaf, count in leaves.items():
                    packages[package_of(leaf)] += count
                out["processes"][name] = {
                    "cpu_ms_per_call": load["cpu_ms_per_call"][name],
                    "packages": {pkg: n / total for pkg, n in packages.most_common(top)},
                    "functions": {leaf: n / total for leaf, n in leaves.most_common(top)},
                }
            return out
        finally:
            _procs.stop(peer, server)


def table(result: dict[str, Any]) -> str:
    """Per process: CPU ms per call and the packages its busy samples fall in."""
    lines = ["| process | CPU ms per call | where its busy samples are (by package) |", "|---|---|---|"]
    for name, data in result["processes"].items():
        shares = ", ".join(f"{pkg} {share:.0%}" for pkg, share in data["packages"].items())
        lines.append(f"| {name} | {data['cpu_ms_per_call']:.2f} | {shares} |")
    return "\n".join(lines)


def report(result: dict[str, Any]) -> str:
    lines = [table(result)]
    for name, data in result["processes"].items():
        lines.append(f"\n{name}, hottest functions (share of busy samples):")
        lines += [f"    {share:6.1%}  {leaf}" for leaf, share in data["functions"].items()]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--top", type=int, default=12)
    parser.add_argument("--backend", choices=("sqlite", "redis"), default="sqlite")
    args = parser.parse_args()
    print(report(eventloop.run(run(args.seconds, args.concurrency, args.top, args.backend))))


if __name__ == "__main__":
    main()
