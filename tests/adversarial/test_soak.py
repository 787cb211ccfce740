"""One minute of the soak in CI: many users and peers, peer processes killed along the way, and not
one job lost (every call answered, nothing left in flight)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from blendbus.testing.blender import needs_bpy

ROOT = Path(__file__).resolve().parents[2]


@needs_bpy
def test_a_one_minute_soak_loses_no_job():
    out = subprocess.run([sys.executable, "-m", "bench.soak", "--seconds", "60"], cwd=ROOT, capture_output=True,
                         text=True, timeout=600)
    assert "{" in out.stdout, out.stderr[-3000:]
    text = out.stdout[out.stdout.index("{"): out.stdout.rindex("}") + 1]
    report = json.loads(text)
    assert out.returncode == 0 and report["lost_jobs"] == 0, report
    assert report["unanswered"] == 0 and report["calls"] > 1000 and report["peer_process_deaths"] >= 3
