"""The benchmark suite runs (tiny sizes, no figures checked: performance is measured, not asserted)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]


def test_the_whole_benchmark_suite_runs_and_writes_its_report(tmp_path):
    out = tmp_path / "performance.md"
    run = subprocess.run([sys.executable, "-m", "bench", "--quick", "--out", str(out)], cwd=ROOT,
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    report = out.read_text()
    for section in ("## Targets", "## Round trip", "## Payload scaling", "## Fan-out", "## Start-up", "## Seeing the scene",
                    "## Where the CPU", "## Replicas on Redis", "## Many replicas, many peers"):
        assert section in report
    assert "| python | 2 |" in report  # a round-trip row at the quick concurrency
    assert "blendbus serve ready" in report

