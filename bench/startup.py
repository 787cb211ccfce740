"""Start-up: `blendbus serve` until it answers with the plugins loaded, `blendbus peer` until registered.

    python -m bench.startup [--runs 5]
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from blendbus.testing.blender import stop_process


def serve_ready(state: Path) -> tuple[float, subprocess.Popen, str]:
    """Seconds from launch until the server prints that it serves (plugins are loaded before that)."""
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "blendbus", "serve", "--port", "0", "--state-dir", str(state)],
                            stderr=subprocess.PIPE, text=True)
    for line in proc.stderr:
        match = re.search(r"serving (\S+)", line)
        if match:
            return time.perf_counter() - start, proc, match.group(1)
    raise RuntimeError("server did not start")


def peer_ready(url: str, state: Path) -> tuple[float, subprocess.Popen]:
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "blendbus", "peer", "--server", url, "--state-dir", str(state)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    for line in proc.stderr:
        if "connected" in line:
            return time.perf_counter() - start, proc
    raise RuntimeError("peer did not connect")


def run(runs: int) -> dict[str, list[float]]:
    serve, peer = [], []
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as tmp:
            seconds, server, url = serve_ready(Path(tmp) / "state")
            serve.append(seconds)
            seconds, blender = peer_ready(url, Path(tmp) / "peer")
            peer.append(seconds)
            stop_process(blender, server)
    return {"blendbus serve ready (all plugins loaded)": serve, "blendbus peer registered (bpy)": peer}


def table(result: dict[str, list[float]], first: str = "what", unit: str = "s") -> str:
    """Seconds (or, with unit="ms", milliseconds) per named measurement: median, min and max over the runs."""
    scale, digits = (1000.0, 1) if unit == "ms" else (1.0, 2)
    lines = [f"| {first} | median {unit} | min {unit} | max {unit} |", "|---|---|---|---|"]
    for name, values in result.items():
        median, low, high = (v * scale for v in (statistics.median(values), min(values), max(values)))
        lines.append(f"| {name} | {median:.{digits}f} | {low:.{digits}f} | {high:.{digits}f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    print(table(run(parser.parse_args().runs)))


if __name__ == "__main__":
    main()
