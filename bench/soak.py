"""A bounded soak: many users and peers, a mixed load, peers killed and restarted along the way.

    python -m bench.soak [--seconds 600] [--users 8] [--peers-per-user 4] [--bpy-peers 2]

Every call must get an answer and no job may be left in flight: the script exits 1 if any job was
lost. It reports calls, answers by status, lost jobs and the server's RSS growth.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import sqlite3
import tempfile
import time
from collections import Counter
from pathlib import Path

from blendbus import eventloop
from blendbus.client import connect

from . import _procs

CALLS = [
    ("blender_test_noop", lambda: {}),
    ("blender_test_echo", lambda: {"value": "x" * random.choice((10, 1000, 100_000))}),
    ("blender_test_sleep", lambda: {"seconds": random.choice((0.01, 0.2, 1.0))}),
    ("blender_test_fail", lambda: {"message": "expected failure"}),
    ("blender_test_background", lambda: {"seconds": 0.05}),
]


async def soak(seconds: float, users: int, per_user: int, bpy_peers: int) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="blendbus-soak-"))
    tokens = {f"token-{u}": f"user{u}" for u in range(users)}
    (tmp / "tokens.json").write_text(json.dumps(tokens))
    server, url = _procs.start_server(tmp / "state", tokens=tmp / "tokens.json")
    python_uuids = {u: [f"u{u}-py{i}" for i in range(per_user - (1 if u < bpy_peers else 0))] for u in range(users)}
    groups = {u: _procs.start_peers(url, python_uuids[u], f"token-{u}", concurrency=4) for u in range(users)}
    blenders = [_procs.start_blender_peer(url, f"u{u}-bpy", tmp / f"bpy{u}", f"token-{u}") for u in range(bpy_peers)]
    statuses: Counter[str] = Counter()
    unanswered = 0
    deaths = 0
    stop_at = time.monotonic() + seconds
    rss_start = _procs.rss_kib(server.pid)

    async def load(u: int) -> None:
        nonlocal unanswered
        targets = python_uuids[u] + ([f"u{u}-bpy"] if u < bpy_peers else [])
        async with connect(url, f"token-{u}") as client:
            while time.monotonic() < stop_at:
                tool, make = random.choice(CALLS)
                args = {**make(), "target_uuid": random.choice(targets), "timeout_s": 15}
                try:
                    result = await asyncio.wait_for(client.call_tool(tool, args), 60)
                    statuses[result.structured_content["status"]] += 1
                except Exception:  # noqa: BLE001 - an unanswered call is exactly what we count
                    unanswered += 1

    async def killer() -> None:
        nonlocal deaths
        while time.monotonic() < stop_at - 5:
            await asyncio.sleep(min(10.0, max(1.0, seconds / 6)))
            u = random.randrange(users)
            groups[u].send_signal(signal.SIGKILL)
            groups[u].wait()
            deaths += 1
            groups[u] = await asyncio.to_thread(_procs.start_peers, url, python_uuids[u], f"token-{u}", 4)

    await asyncio.gather(*(load(u) for u in range(users) for _ in range(2)), killer())
    await asyncio.sleep(7)  # past the liveness grace: anything in flight must have settled by now
    db = sqlite3.connect(tmp / "state" / "jobs.sqlite3")
    in_flight = db.execute("SELECT COUNT(*) FROM jobs WHERE status IN ('queued', 'running')").fetchone()[0]
    by_status = dict(db.execute("SELECT status, COUNT(*) FROM jobs GROUP BY status").fetchall())
    rss_end = _procs.rss_kib(server.pid)
    _procs.stop(*groups.values(), *blenders, server)
    return {"seconds": seconds, "users": users, "peers": users * per_user, "bpy_peers": bpy_peers,
            "calls": sum(statuses.values()) + unanswered, "answers": dict(statuses), "unanswered": unanswered,
            "jobs_by_status": by_status, "lost_jobs": unanswered + in_flight, "peer_process_deaths": deaths,
            "server_rss_kib": [rss_start, rss_end]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=600)
    parser.add_argument("--users", type=int, default=8)
    parser.add_argument("--peers-per-user", type=int, default=4)
    parser.add_argument("--bpy-peers", type=int, default=2)
    args = parser.parse_args()
    report = eventloop.run(soak(args.seconds, args.users, args.peers_per_user, args.bpy_peers))
    print(json.dumps(report, indent=2))
    growth = report["server_rss_kib"][1] - report["server_rss_kib"][0]
    print(f"{report['calls']} calls, {report['lost_jobs']} lost, server RSS {report['server_rss_kib'][0] // 1024}"
          f" -> {report['server_rss_kib'][1] // 1024} MiB ({growth // 1024:+d} MiB)")
    raise SystemExit(1 if report["lost_jobs"] else 0)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
