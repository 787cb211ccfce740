"""A bounded soak: many users and peers, a mixed load, peers killed and restarted along the way, and
clients that abandon what they start.

    python -m bench.soak [--seconds 600] [--users 8] [--peers-per-user 4] [--bpy-peers 2] [--replicas 3]
                         [--cluster | --sentinel]

`--cluster` runs the replicas on a Redis Cluster of three masters started for the run; `--sentinel`
on a master, a replica and three sentinels, and kills the master two thirds into the run (the
sentinels promote the replica).

Every call must get an answer and no job may be left in flight once the liveness of the peers killed
last has lapsed (`SETTLE_S` after the load stops): the script exits 1 if any job was lost, and the
report describes the first jobs left in flight. It reports calls, answers by status, lost jobs, the
server's RSS along the way and its CPU once the load has stopped: abandoned waits, subscriptions
and streams must leave nothing running.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import shutil
import signal
import sqlite3
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx2

from blendbus import eventloop
from blendbus import protocol as p
from blendbus.backends.base import CLAIM_S
from blendbus.backends.redis.keys import Keys, parse_url
from blendbus.backends.redis.peers import POLL_LEASE_S
from blendbus.client import connect
from blendbus.limits import Limits
from blendbus.testing.raw import ModernClient, SessionClient
from blendbus.testing.redis import (client_for, cluster_group, fresh_prefix, redis_server, remove_prefix,
                                    sentinel_group, with_prefix)

from . import _procs

CALLS = [
    ("blender_test_noop", lambda: {}),
    ("blender_test_echo", lambda: {"value": "x" * random.choice((10, 1000, 100_000))}),
    ("blender_test_sleep", lambda: {"seconds": random.choice((0.01, 0.2, 1.0))}),
    ("blender_test_fail", lambda: {"message": "expected failure"}),
    ("blender_test_background", lambda: {"seconds": 0.05}),
]


def _rotated(urls: list[str], n: int) -> str:
    """The replicas' URLs as one failover list, starting at replica n (so load spreads over them)."""
    return ",".join(urls[n % len(urls):] + urls[:n % len(urls)])


IN_FLIGHT = p.OPEN_STATUSES
SHOWN_OPEN = 10
"""How many jobs left in flight the report describes, to tell why they were."""
SETTLE_S = POLL_LEASE_S + Limits().peer_grace_s + CLAIM_S + 5.0
"""The longest a job may stay in flight once the load stops (see `_settled`), with the reaper's pace
and a margin on top: one still in flight then is lost."""


def _jobs_in_redis(url: str, prefix: str) -> tuple[dict[str, int], list[dict[str, Any]]]:
    """Jobs by status, read straight from Redis (every user's), and the first jobs still in flight: their
    fields, and whether their peer is still registered and until when it counts as alive."""
    keys_of = Keys(prefix)
    client = client_for(url)
    try:
        named = {key: keys_of.job_of(key) for key in client.scan_iter(match=f"{prefix}:*:job:*", count=1000)}
        jobs = {(key.decode(), ids[0]): {k.decode(): v.decode(errors="replace") for k, v in client.hgetall(key).items()}
                for key, ids in named.items() if ids}  # a job's hash, not its result or a staging key
        now, shown = time.time(), []
        for (key, user), job in jobs.items():
            if job.get("status") in IN_FLIGHT and len(shown) < SHOWN_OPEN:
                alive = client.zscore(keys_of.alive, keys_of.member(user, job.get("target", "")))
                shown.append({"job": key, **{f: job.get(f) for f in ("status", "kind", "command", "target", "error")},
                              "updated_s_ago": round(now - float(job.get("updated", now)), 1),
                              "peer_registered": bool(client.exists(keys_of.peer(user, job.get("target", "")))),
                              "peer_alive_for_s": None if alive is None else round(alive - now, 1)})
        return dict(Counter(job.get("status", "") for job in jobs.values())), shown
    finally:
        client.close()


async def soak(seconds: float, users: int, per_user: int, bpy_peers: int, replicas: int = 0,
               store: str = "redis") -> dict:
    """With `replicas`, that many servers share one Redis (`store`: "redis", "cluster" for a Redis Cluster,
    "sentinel" for a master under Sentinel, killed mid-run); peers and callers spread over them with
    failover lists, and one replica is SIGKILLed mid-run (and started again)."""
    tmp = Path(tempfile.mkdtemp(prefix="blendbus-soak-"))
    tokens = {f"token-{u}": f"user{u}" for u in range(users)}
    (tmp / "tokens.json").write_text(json.dumps(tokens))
    with contextlib.ExitStack() as stack:
        stack.callback(shutil.rmtree, tmp, ignore_errors=True)  # last, once every process has stopped
        fail_over: Callable[[], None] | None = None
        if replicas:
            if store == "sentinel":
                group = stack.enter_context(sentinel_group())
                base, fail_over = group.url, group.kill_master
            elif store == "cluster":
                base = stack.enter_context(cluster_group()).url
            else:
                base = stack.enter_context(redis_server())
            prefix = fresh_prefix("soak")
            stack.callback(remove_prefix, base, prefix)
            backend = with_prefix(base, prefix)
        else:
            backend = "sqlite"
        servers: list[tuple[Any, str]] = []
        stack.callback(lambda: _procs.stop(*(proc for proc, _ in servers)))  # those running by then
        servers += [_procs.start_server(tmp / f"state{n}", tokens=tmp / "tokens.json", backend=backend)
                    for n in range(max(1, replicas))]
        urls = [url for _, url in servers]
        return await _soak(tmp, servers, urls, backend, seconds, users, per_user, bpy_peers, replicas, fail_over)


async def _soak(tmp: Path, servers: list, urls: list[str], backend: str, seconds: float, users: int, per_user: int,
                bpy_peers: int, replicas: int, fail_over: Callable[[], None] | None = None) -> dict:
    python_uuids = {u: [f"u{u}-py{i}" for i in range(per_user - (1 if u < bpy_peers else 0))] for u in range(users)}
    groups: dict[int, Any] = {}
    blenders: list[Any] = []
    try:  # every process started here stops, whatever happens (the servers are stopped by the caller)
        for u in range(users):
            groups[u] = _procs.start_peers(_rotated(urls, u), python_uuids[u], f"token-{u}", concurrency=4)
        blenders += [_procs.start_blender_peer(_rotated(urls, u + 1), f"u{u}-bpy", tmp / f"bpy{u}", f"token-{u}")
                     for u in range(bpy_peers)]
        statuses: Counter[str] = Counter()
        unanswered = 0
        cut_off = 0
        deaths = 0
        replica_kills = 0
        failovers = 0
        stop_at = time.monotonic() + seconds
        rss = [_procs.rss_kib(servers[0][0].pid)]

        async def load(u: int, n: int) -> None:
            nonlocal unanswered, cut_off
            targets = python_uuids[u] + ([f"u{u}-bpy"] if u < bpy_peers else [])
            while time.monotonic() < stop_at:
                try:
                    async with connect(_rotated(urls, u + n), f"token-{u}") as client:
                        while time.monotonic() < stop_at:
                            tool, make = random.choice(CALLS)
                            args = {**make(), "target_uuid": random.choice(targets), "timeout_s": 15}
                            try:
                                result = await asyncio.wait_for(client.call_tool(tool, args), 60)
                                statuses[result.structured_content["status"]] += 1
                            except Exception:  # noqa: BLE001 - an unanswered call is exactly what we count
                                if not replicas:
                                    unanswered += 1
                                    continue
                                cut_off += 1  # its replica died under it: reconnect to another
                                break
                except Exception:  # noqa: BLE001 - no replica answered this time: try again
                    cut_off += 1
                    await asyncio.sleep(0.5)

        async def killer() -> None:
            nonlocal deaths
            while time.monotonic() < stop_at - 5:
                await asyncio.sleep(min(10.0, max(1.0, seconds / 6)))
                u = random.randrange(users)
                groups[u].send_signal(signal.SIGKILL)
                groups[u].wait()
                deaths += 1
                groups[u] = await asyncio.to_thread(_procs.start_peers, _rotated(urls, u), python_uuids[u],
                                                    f"token-{u}", 4)

        async def master_killer() -> None:
            nonlocal failovers
            await asyncio.sleep(seconds * 2 / 3)
            await asyncio.to_thread(fail_over)
            failovers += 1

        async def replica_killer() -> None:
            nonlocal replica_kills
            await asyncio.sleep(seconds / 3)
            proc, url = servers[0]
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            replica_kills += 1
            await asyncio.sleep(min(10.0, seconds / 6))
            port = int(url.rsplit(":", 1)[1].split("/")[0])
            servers[0] = await asyncio.to_thread(_procs.start_server, tmp / "state0", tmp / "tokens.json", None,
                                                 backend, port)

        abandoned: Counter[str] = Counter()

        async def abandoner(u: int) -> None:
            """A careless client: tasks/result calls, status streams and waits it hangs up on, subscriptions
            it never takes back, and every other session left without a goodbye."""
            url, token = urls[u % len(urls)], f"token-{u}"
            events = url.rsplit("/mcp", 1)[0] + "/status/api/events"
            async with httpx2.AsyncClient(timeout=30) as http, httpx2.AsyncClient(timeout=0.2) as hasty:
                n = 0
                while time.monotonic() < stop_at:
                    n += 1
                    try:
                        session = await SessionClient(http, url, token).open()
                        created = await session("tools/call", {"name": "blender_test_sleep", "task": {}, "arguments": {
                            "seconds": 0.5, "target_uuid": python_uuids[u][0]}})
                        task_id = created["result"]["task"]["taskId"]
                        for _ in range(3):
                            async with session.streaming("tasks/result", {"taskId": task_id}):
                                abandoned["tasks/result"] += 1
                        for i in range(5):
                            await session("resources/subscribe", {"uri": f"blender://scene/object/o{n}-{i}"})
                            abandoned["subscriptions"] += 1
                        async with http.stream("GET", events, headers={"Authorization": f"Bearer {token}"}):
                            abandoned["status streams"] += 1
                        with contextlib.suppress(httpx2.TimeoutException):  # a client that gives up after 0.2 s
                            await ModernClient(hasty, url, token).call("blender_get_job",
                                                                       {"job_id": task_id, "wait_s": 30})
                        abandoned["get_job waits"] += 1
                        if n % 2:
                            await session.close()
                        else:
                            abandoned["sessions left open"] += 1
                    except Exception as exc:  # noqa: BLE001 - refused at a cap: counted, not fatal
                        abandoned[f"refused: {type(exc).__name__}"] += 1
                    await asyncio.sleep(0.3)

        await asyncio.gather(*(load(u, n) for u in range(users) for n in range(2)), killer(),
                             *(abandoner(u) for u in range(users)), *([replica_killer()] if replicas else []),
                             *([master_killer()] if fail_over else []),
                             _sample_rss(servers[0][0].pid, rss, seconds))

        def jobs() -> tuple[dict[str, int], list[dict[str, Any]]]:
            if replicas:
                return _jobs_in_redis(*parse_url(backend))
            with contextlib.closing(sqlite3.connect(tmp / "state0" / "jobs.sqlite3")) as db:
                return (dict(db.execute("SELECT status, COUNT(*) FROM jobs GROUP BY status").fetchall()),
                        [dict(zip(("job", "status", "kind", "command", "target", "error", "updated_s_ago"), row))
                         for row in db.execute("SELECT job_id, status, kind, command, target_uuid, error, ? - updated"
                                               " FROM jobs WHERE status IN (?, ?) LIMIT ?",
                                               (time.time(), *IN_FLIGHT, SHOWN_OPEN))])

        stopped = time.monotonic()
        await asyncio.sleep(7)  # past the liveness grace: most of what was in flight has settled
        by_status, open_jobs, settled_s = await _settled(jobs, stopped)
        cpu_before, t0 = _procs.cpu_s(servers[0][0].pid), time.monotonic()
        await asyncio.sleep(5)  # nothing calls now: whatever the server still does, abandoned work does
        idle_cpu = (_procs.cpu_s(servers[0][0].pid) - cpu_before) / (time.monotonic() - t0) * 100
        in_flight = sum(by_status.get(status, 0) for status in IN_FLIGHT)
        rss.append(_procs.rss_kib(servers[0][0].pid))
        return {"seconds": seconds, "users": users, "peers": users * per_user, "bpy_peers": bpy_peers,
                "replicas": replicas, "redis_cluster": backend.startswith("redis+cluster://"),
                "redis_master_failovers": failovers,
                "replica_kills": replica_kills,
                "calls": sum(statuses.values()) + unanswered + cut_off, "answers": dict(statuses),
                "unanswered": unanswered,
                "calls_cut_off_by_a_replica_kill": cut_off,
                "jobs_by_status": by_status, "lost_jobs": unanswered + in_flight, "settled_after_s": settled_s,
                "left_in_flight": open_jobs, "peer_process_deaths": deaths,
                "abandoned": dict(abandoned), "server_rss_kib": [rss[0], rss[-1]], "server_rss_kib_along_the_way": rss,
                "server_cpu_percent_after_the_load": round(idle_cpu, 2)}
    finally:
        _procs.stop(*groups.values(), *blenders)


async def _settled(jobs: Callable[[], tuple[dict[str, int], list[dict[str, Any]]]], stopped: float
                   ) -> tuple[dict[str, int], list[dict[str, Any]], float]:
    """Jobs by status and those in flight, once none is, or once SETTLE_S has passed since the load
    stopped (`stopped`, monotonic); and how long after it that was. A peer killed mid-job leaves its
    jobs running until its liveness lapses: the grace after its poll hung up, or, when the store failed just then (a failover), the
    lease its replica last vouched for (POLL_LEASE_S more); then a reaper ends them as lost, and if its
    store fails as it does, the next one does when the first one's claim lapses (CLAIM_S)."""
    while True:
        by_status, open_jobs = await asyncio.to_thread(jobs)
        waited = time.monotonic() - stopped
        if not any(by_status.get(status) for status in IN_FLIGHT) or waited >= SETTLE_S:
            return by_status, open_jobs, round(waited, 1)
        await asyncio.sleep(0.5)


async def _sample_rss(pid: int, into: list[int], seconds: float) -> None:
    """The server's RSS at each sixth of the run (after the first sample, taken at the start)."""
    for _ in range(6):
        await asyncio.sleep(seconds / 6)
        with contextlib.suppress(OSError):  # a replica killed just now
            into.append(_procs.rss_kib(pid))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=600)
    parser.add_argument("--users", type=int, default=8)
    parser.add_argument("--peers-per-user", type=int, default=4)
    parser.add_argument("--bpy-peers", type=int, default=2)
    parser.add_argument("--replicas", type=int, default=0,
                        help="N servers on one Redis (the machine's, or one started here); one is killed mid-run")
    stores = parser.add_mutually_exclusive_group()
    stores.add_argument("--cluster", action="store_true",
                        help="with --replicas: on a Redis Cluster of three masters started for the run")
    stores.add_argument("--sentinel", action="store_true",
                        help="with --replicas: on a master and a replica under three sentinels; the master is killed")
    args = parser.parse_args()
    report = eventloop.run(soak(args.seconds, args.users, args.peers_per_user, args.bpy_peers, args.replicas,
                                "cluster" if args.cluster else "sentinel" if args.sentinel else "redis"))
    print(json.dumps(report, indent=2))
    growth = report["server_rss_kib"][1] - report["server_rss_kib"][0]
    print(f"{report['calls']} calls, {report['lost_jobs']} lost, server RSS {report['server_rss_kib'][0] // 1024}"
          f" -> {report['server_rss_kib'][1] // 1024} MiB ({growth // 1024:+d} MiB); abandoned:"
          f" {sum(v for k, v in report['abandoned'].items() if not k.startswith('refused'))}; server CPU after the"
          f" load {report['server_cpu_percent_after_the_load']}%")
    raise SystemExit(1 if report["lost_jobs"] else 0)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
