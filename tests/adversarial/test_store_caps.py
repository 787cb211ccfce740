"""The job store's caps are per user and hold after every write (security round 2, #4 and #5).

The attacks: one user's traffic (2.3 GB of results, then 929 cheap calls) evicted all of another
user's jobs; the cap was checked every 1,000 jobs only, error and progress bytes were not counted,
and the file never shrank.
"""

from __future__ import annotations

import os

from blendbus import protocol as p
from blendbus.jobs import JobStore


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
