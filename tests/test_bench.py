"""The benchmarks run (tiny sizes, no figures checked: performance is measured, not asserted)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_roundtrip_benchmark_runs():
    out = subprocess.run([sys.executable, "-m", "bench.roundtrip", "--seconds", "0.3", "--concurrency", "2"],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "| python | 2 |" in out.stdout


def test_startup_benchmark_runs():
    out = subprocess.run([sys.executable, "-m", "bench.startup", "--runs", "1"], cwd=ROOT, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "blendbus serve ready" in out.stdout
