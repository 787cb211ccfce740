"""The job store's caps are per user and hold after every write (security round 2, #4 and #5), and
count everything a user makes the bus hold (round 3, #7).

The attacks: one user's traffic (2.3 GB of results, then 929 cheap calls) evicted all of another
user's jobs; the cap was checked every 1,000 jobs only, error and progress bytes were not counted,
and the file never shrank. Then: payloads waiting in a peer's queue were not counted (320 MiB sat in
Redis while the user's counted usage was 5,360 bytes of a 512 MiB cap), and jobs in flight passed
the job cap (40 stored under a cap of 10).
"""

from __future__ import annotations

import os

import pytest
from mcp import Client

from blendbus import protocol as p
from blendbus.backends import open_backend
from blendbus.dispatch import Hub, Limits
from blendbus.backends.sqlite import JobStore
from blendbus.plugins import load_plugins
from blendbus.server import BlendbusServer
from blendbus.testing import call_envelope
from blendbus.testing import plugin as testing_plugin


def _finish(store: JobStore, user: str, job_id: str, *, result: object = None, error: str = "") -> None:
    store.create(user, job_id, kind="k", command="c", target_uuid="peer")
    store.advance(user, job_id, p.COMPLETED if not error else p.FAILED, result=result, error=error)


def test_one_users_traffic_cannot_evict_another_users_history(tmp_path):
    store = JobStore(tmp_path / "j.sqlite3", max_jobs=400, max_bytes=2_000_000,
                     max_jobs_per_user=300, max_bytes_per_user=1_500_000)
    for i in range(20):
        _finish(store, "alice", f"a{i}", result="a" * 5_000)
    for i in range(300):  # big results first, then many cheap calls
        _finish(store, "bob", f"big{i}", result="b" * 50_000)
    for i in range(929):
        _finish(store, "bob", f"cheap{i}")
    assert all(store.get("alice", f"a{i}") is not None for i in range(20))
    jobs, size = store.usage("bob")
    assert jobs <= 300 and size <= 1_500_000 and store.get("bob", "cheap928") is not None
    # Over the store's own caps, only a user above the fair share (cap / users) gives way.
    carol = JobStore(tmp_path / "j.sqlite3", max_jobs=400, max_bytes=600_000,
                     max_jobs_per_user=300, max_bytes_per_user=600_000)
    _finish(carol, "carol", "c0", result="c" * 1000)
    assert carol.usage("alice") == store.usage("alice") and carol.get("carol", "c0") is not None
    assert carol.total()[1] <= 600_000


def test_the_cap_holds_after_every_write_counting_every_byte(tmp_path):
    store = JobStore(tmp_path / "j.sqlite3", max_bytes=300_000, max_bytes_per_user=300_000)
    for i in range(60):
        if i % 3 == 0:
            _finish(store, "u", f"j{i}", result="r" * 40_000)
        elif i % 3 == 1:
            _finish(store, "u", f"j{i}", error="e" * 40_000)  # error text counts
        else:
            store.create("u", f"j{i}", kind="k", command="c", target_uuid="peer")
            store.set_progress("u", f"j{i}", 0.5, "m" * 40_000)  # so do progress messages
            store.advance("u", f"j{i}", p.COMPLETED, result=None)
        assert store.total()[1] <= 300_000, i
    assert store.get("u", "j59") is not None


def test_space_is_handed_back_to_the_file_system(tmp_path):
    path = tmp_path / "j.sqlite3"
    store = JobStore(path, max_bytes=100_000_000, max_bytes_per_user=100_000_000)
    for i in range(20):
        _finish(store, "u", f"j{i}", result="x" * 1_000_000)
    store.close()
    grown = os.path.getsize(path)
    small = JobStore(path, max_bytes=2_000_000, max_bytes_per_user=2_000_000)
    assert small.prune() >= 18
    small.close()
    assert grown > 20_000_000 and os.path.getsize(path) < 4_000_000


@pytest.mark.anyio
@pytest.mark.parametrize("backend", ["sqlite", "redis"])
async def test_queued_payloads_count_against_the_users_bytes(backend, request, tmp_path):
    """Through the bus: a peer that takes nothing, and scripts queued for it without waiting."""
    url = backend if backend == "sqlite" else request.getfixturevalue("blendbus_redis")
    limits = Limits(peer_grace_s=60, max_queued_per_peer=1000)
    server = BlendbusServer(load_plugins(extra=[("testing", testing_plugin)]), Hub(open_backend(
        url, state_dir=tmp_path, grace_s=60, max_jobs_per_user=10, max_bytes_per_user=1_000_000), limits))
    async with Client(server.mcp) as client:
        await call_envelope(client, "blender_register_client", {"client_uuid": "never-polls"})
        script = "#" + "x" * 150_000
        answers = [await call_envelope(client, "blender_send_message", {
            "payload": {"message_type": "job_dispatch", "script": script}, "wait": False}) for _ in range(8)]
        statuses = [a["status"] for a in answers]
        assert statuses[:6] == [p.QUEUED] * 6 and statuses[6:] == [p.BUSY] * 2, statuses
        assert "1000000 bytes" in answers[-1]["error"]
        jobs, size = await server.hub.jobs.usage("local")
        assert jobs == 6 and 900_000 < size <= 1_000_000  # the queued scripts are what is counted
        small = [await call_envelope(client, "blender_send_message", {
            "payload": {"message_type": "job_dispatch", "script": "pass"}, "wait": False}) for _ in range(6)]
        assert [a["status"] for a in small] == [p.QUEUED] * 4 + [p.BUSY] * 2  # and jobs in flight: 10 at most
        assert "10 jobs" in small[-1]["error"] and (await server.hub.jobs.usage("local"))[0] == 10
    await server.hub.jobs.close()
