"""Benchmark processes: a server with the test plugin, and a Python test peer, each in its own process."""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from blendbus.testing.blender import stop_process

stop = stop_process

SERVER = """
import asyncio, json, sys
from blendbus import eventloop
from pathlib import Path
from blendbus.testing import make_server, serve_http
from blendbus.testing import plugin
from blendbus.dispatch import Limits

async def main():
    state_dir, tokens_file, limits, backend = Path(sys.argv[1]), sys.argv[2], json.loads(sys.argv[3]), sys.argv[4]
    server = make_server([("testing", plugin)], state_dir=state_dir, limits=Limits(**limits), backend=backend)
    tokens = json.loads(Path(tokens_file).read_text()) if tokens_file else None
    async with serve_http(server, tokens=tokens, port=int(sys.argv[5])) as url:
        print("serving", url, flush=True)
        await asyncio.Event().wait()

eventloop.run(main())
"""

PEERS = """
import asyncio, json, sys
from blendbus import eventloop
from blendbus.client import connect
from blendbus.testing import PythonPeer

def connector(url, token):
    return lambda: connect(url, token or None)

async def main():
    url, peers, concurrency = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3])
    # As long as a real peer would keep trying: a peer restarted while Redis fails over (a soak kills
    # both) registers only once the sentinels have promoted a replica, which may take two failover timeouts.
    running = [await PythonPeer(connector(url, token), uuid=uuid, concurrency=concurrency).start(timeout=60)
               for uuid, token in peers]
    print("ready", flush=True)
    await asyncio.Event().wait()
eventloop.run(main())
"""


def start_server(state_dir: Path, tokens: Path | None = None, limits: dict[str, Any] | None = None,
                 backend: str = "sqlite", port: int = 0) -> tuple[subprocess.Popen, str]:
    """The server process (with the test plugin); with `tokens` (a tokens file) auth is on;
    `limits` are `blendbus.dispatch.Limits` fields; `backend` as `blendbus serve --backend` takes it."""
    args = [str(state_dir), str(tokens or ""), json.dumps(limits or {}), backend, str(port)]
    proc = subprocess.Popen([sys.executable, "-c", SERVER, *args], stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    match = re.search(r"serving (\S+)", line)
    if not match:
        proc.kill()
        raise RuntimeError(f"server did not start: {line!r}")
    return proc, match.group(1)


def start_peers(url: str, uuids: list[str], token: str | list[str] = "", concurrency: int = 16) -> subprocess.Popen:
    """One process holding a Python test peer per uuid, each with its own session and token (one
    for all, or one per uuid); returns once all are registered."""
    tokens = token if isinstance(token, list) else [token] * len(uuids)
    proc = subprocess.Popen([sys.executable, "-c", PEERS, url, json.dumps(list(zip(uuids, tokens))), str(concurrency)],
                            stdout=subprocess.PIPE, text=True)
    if proc.stdout.readline().strip() != "ready":
        proc.kill()
        raise RuntimeError("peers did not start")
    return proc


def start_python_peer(url: str, uuid: str, concurrency: int = 16) -> subprocess.Popen:
    return start_peers(url, [uuid], concurrency=concurrency)


def scratch_env(folder: Path) -> dict[str, str]:
    """The environment for a Blender process whose temporary files belong in `folder`: a Blender
    that is killed never removes its own temporary folder."""
    folder.mkdir(parents=True, exist_ok=True)
    return {**os.environ, "TMPDIR": str(folder)}


def start_blender_peer(url: str, uuid: str, state_dir: Path, token: str = "") -> subprocess.Popen:
    """`blendbus peer` (real bpy) in its own process, holding the test plugin the benchmark servers
    serve; returns once it is registered."""
    proc = subprocess.Popen([sys.executable, "-m", "blendbus", "peer", "--server", url, "--uuid", uuid,
                             "--state-dir", str(state_dir), "--plugin", "testing=blendbus.testing.plugin",
                             *(["--token", token] if token else [])],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,  # keep the table clean
                            env=scratch_env(state_dir))
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if "connected" in proc.stderr.readline():
            return proc
    proc.kill()
    raise RuntimeError("Blender peer did not connect")


# ---- what a process costs (Linux /proc) ----------------------------------------------------------
def _status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def rss_kib(pid: int) -> int:
    return _status_kib(pid, "VmRSS")


def peak_rss_kib(pid: int) -> int:
    """The process's peak resident set since it started or since `reset_peak_rss`."""
    return _status_kib(pid, "VmHWM")


def reset_peak_rss(pid: int) -> None:
    Path(f"/proc/{pid}/clear_refs").write_text("5")


def cpu_s(pid: int) -> float:
    """User + system CPU seconds the process has used."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def run_sessions(session, concurrency: int, seconds: float, pids: dict[str, int] | None = None,
                on_start: Callable[[], object] | None = None) -> dict[str, Any]:
    """Runs `concurrency` workers, each in its own `session(index)` (an async context yielding a call
    coroutine function), calling back to back for `seconds`; latency percentiles and calls/s, and
    the CPU milliseconds per call of this process ("client") and of each of `pids`. `on_start` runs
    when the measured window opens, after every session is set up."""
    latencies: list[float] = []
    stop_at = 0.0
    ready = asyncio.Event()

    async def worker(index: int) -> None:
        async with session(index) as call:
            await call()  # warm the session
            await ready.wait()
            while True:  # at least one measured call each: a slow machine yields fewer samples, never none
                t0 = time.perf_counter()
                await call()
                latencies.append(time.perf_counter() - t0)
                if time.perf_counter() >= stop_at:
                    break

    tasks = [asyncio.ensure_future(worker(i)) for i in range(concurrency)]
    await asyncio.sleep(1.0)
    pids = {"client": os.getpid(), **(pids or {})}
    cpu = {name: cpu_s(pid) for name, pid in pids.items()}
    if on_start is not None:
        on_start()
    start = time.perf_counter()
    stop_at = start + seconds
    ready.set()
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - start
    calls = max(1, len(latencies))
    cpu_ms = {name: (cpu_s(pid) - cpu[name]) * 1000 / calls for name, pid in pids.items()}
    return summarize(latencies) | {"calls_per_s": len(latencies) / elapsed, "cpu_ms_per_call": cpu_ms,
                                   "latencies": latencies}


def summarize(latencies: list[float]) -> dict[str, float]:
    """Count, p50 and p99 (ms) of latencies in seconds (NaN, printed as such, without any)."""
    latencies = sorted(latencies)
    if not latencies:
        return {"calls": 0, "p50_ms": math.nan, "p99_ms": math.nan}
    pick = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000  # noqa: E731
    return {"calls": len(latencies), "p50_ms": pick(0.50), "p99_ms": pick(0.99)}


async def measure(url: str | list[str], tool: str, args: dict | list[dict], concurrency: int, seconds: float,
                  token: str | None = None, pids: dict[str, int] | None = None,
                  on_start: Callable[[], object] | None = None) -> dict[str, Any]:
    """An MCP tool called from `concurrency` client sessions for `seconds`. Given lists, worker i
    uses url[i % len] and args[i % len] (callers spread over replicas, each aiming at some peer)."""
    from blendbus.client import connect

    urls = url if isinstance(url, list) else [url]
    arg_sets = args if isinstance(args, list) else [args]

    @contextlib.asynccontextmanager
    async def session(index: int):
        async with connect(urls[index % len(urls)], token) as client:
            mine = arg_sets[index % len(arg_sets)]

            async def call() -> None:
                result = await client.call_tool(tool, mine)
                if result.is_error:
                    raise RuntimeError(f"{tool} failed: {result.structured_content}")
            yield call

    return await run_sessions(session, concurrency, seconds, pids, on_start)


async def measure_http(url: str, concurrency: int, seconds: float) -> dict[str, Any]:
    """The bare HTTP floor: GET /healthz on the same app, keep-alive, one connection per worker."""
    import httpx2

    health = url.rsplit("/mcp", 1)[0] + "/healthz"

    @contextlib.asynccontextmanager
    async def session(index: int):
        async with httpx2.AsyncClient(limits=httpx2.Limits(max_connections=1)) as http:
            async def call() -> None:
                (await http.get(health)).raise_for_status()
            yield call

    return await run_sessions(session, concurrency, seconds)
