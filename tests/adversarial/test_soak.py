"""The soak in CI: many users and peers, peer processes killed along the way, and not one job lost
(every call answered, nothing left in flight). A minute on one server with SQLite; half a minute on
three replicas over a Redis Cluster of three masters, one replica killed mid-run; and half a minute
through a Sentinel failover."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from blendbus.testing.blender import needs_bpy

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


def soak(*args: str) -> tuple[int, dict]:
    """Run `python -m bench.soak ARGS`: its exit code and its report."""
    out = subprocess.run([sys.executable, "-m", "bench.soak", *args], cwd=ROOT, capture_output=True, text=True,
                         timeout=600)
    assert "{" in out.stdout, out.stderr[-3000:]
    return out.returncode, json.loads(out.stdout[out.stdout.index("{"): out.stdout.rindex("}") + 1])


@needs_bpy
def test_a_one_minute_soak_loses_no_job():
    code, report = soak("--seconds", "60")
    assert code == 0 and report["lost_jobs"] == 0, json.dumps(report)
    assert report["unanswered"] == 0 and report["calls"] > 1000 and report["peer_process_deaths"] >= 3


def test_a_soak_on_a_redis_cluster_loses_no_job():
    code, report = soak("--seconds", "30", "--replicas", "3", "--cluster", "--users", "4", "--peers-per-user", "3",
                        "--bpy-peers", "0")
    assert code == 0 and report["lost_jobs"] == 0 and report["redis_cluster"], json.dumps(report)
    assert report["unanswered"] == 0 and report["calls"] > 500 and report["replica_kills"] == 1


def test_a_soak_through_a_sentinel_failover_loses_no_job():
    """Three replicas on a master under three sentinels; the master is killed two thirds in and the
    sentinels promote its replica: every call is answered and no job is left open on the new master."""
    code, report = soak("--seconds", "30", "--replicas", "3", "--sentinel", "--users", "4", "--peers-per-user", "3",
                        "--bpy-peers", "0")
    assert code == 0 and report["lost_jobs"] == 0 and report["redis_master_failovers"] == 1, json.dumps(report)
    assert report["unanswered"] == 0 and report["calls"] > 500 and sum(report["jobs_by_status"].values()) > 0
