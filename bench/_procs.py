"""Benchmark processes: a server with the test plugin, and a Python test peer, each in its own process."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import time
from pathlib import Path

from blendbus.testing.blender import stop_process

stop = stop_process

SERVER = """
import asyncio, json, sys
from pathlib import Path
from blendbus.testing import make_server, serve_http
from blendbus.testing import plugin

async def main(seconds):
    server = make_server([("testing", plugin)], state_dir=Path(sys.argv[1]))
    tokens = json.loads(Path(sys.argv[3]).read_text()) if len(sys.argv) > 3 else None
    async with serve_http(server, tokens=tokens) as url:
        print("serving", url, flush=True)
        if seconds:
            await asyncio.sleep(seconds)
        else:
            await asyncio.Event().wait()

seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 0
if seconds:  # profile the server for that long, then print where its time went
    import cProfile, pstats
    profile = cProfile.Profile()
    profile.runcall(asyncio.run, main(seconds))
    pstats.Stats(profile).sort_stats("tottime").print_stats(25)
else:
    asyncio.run(main(0))
"""

PEER = """
import asyncio, sys
from blendbus.client import connect
from blendbus.testing import PythonPeer

async def main():
    url, uuid = sys.argv[1], sys.argv[2]
    async with PythonPeer(lambda: connect(url), uuid=uuid, concurrency=int(sys.argv[3])):
        print("ready", flush=True)
        await asyncio.Event().wait()
asyncio.run(main())
"""


def start_server(state_dir: Path, profile_s: float = 0, tokens: Path | None = None) -> tuple[subprocess.Popen, str]:
    """The server process (with the test plugin); with profile_s it runs under cProfile that long and
    prints the profile; with `tokens` (a tokens file) auth is on."""
    args = [str(state_dir), str(profile_s)] + ([str(tokens)] if tokens else [])
    proc = subprocess.Popen([sys.executable, "-c", SERVER, *args], stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    match = re.search(r"serving (\S+)", line)
    if not match:
        proc.kill()
        raise RuntimeError(f"server did not start: {line!r}")
    return proc, match.group(1)


def start_python_peer(url: str, uuid: str, concurrency: int = 16) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", PEER, url, uuid, str(concurrency)], stdout=subprocess.PIPE, text=True)
    if proc.stdout.readline().strip() != "ready":
        proc.kill()
        raise RuntimeError("peer did not start")
    return proc


def start_blender_peer(url: str, uuid: str, state_dir: Path) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-m", "blendbus", "peer", "--server", url, "--uuid", uuid,
                             "--state-dir", str(state_dir)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)  # Blender prints to stdout; keep the benchmark's table clean
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if "connected" in proc.stderr.readline():
            return proc
    proc.kill()
    raise RuntimeError("Blender peer did not connect")




async def measure(url: str, tool: str, args: dict, concurrency: int, seconds: float) -> dict[str, float]:
    """Calls `tool` from `concurrency` client sessions for `seconds`; latency percentiles and calls/s."""
    from blendbus.client import connect

    latencies: list[float] = []
    stop_at = 0.0

    async def worker() -> None:
        async with connect(url) as client:
            await client.call_tool(tool, args)  # warm the session
            await ready.wait()
            while time.perf_counter() < stop_at:
                t0 = time.perf_counter()
                result = await client.call_tool(tool, args)
                latencies.append(time.perf_counter() - t0)
                if result.is_error:
                    raise RuntimeError(f"{tool} failed: {result.structured_content}")

    ready = asyncio.Event()
    tasks = [asyncio.ensure_future(worker()) for _ in range(concurrency)]
    await asyncio.sleep(1.0)
    start = time.perf_counter()
    stop_at = start + seconds
    ready.set()
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - start
    latencies.sort()
    pick = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000  # noqa: E731
    return {"calls": len(latencies), "p50_ms": pick(0.50), "p99_ms": pick(0.99), "calls_per_s": len(latencies) / elapsed}
