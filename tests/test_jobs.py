from __future__ import annotations

from blendbus import protocol as p
from blendbus.jobs import DuplicateJob, JobStore

import pytest


def test_status_only_moves_forward(tmp_path):
    store = JobStore(tmp_path / "j.sqlite3")
    store.create("u", "j1", kind=p.COMMAND_DISPATCH, command="c", target_uuid="peer")
    assert store.advance("u", "j1", p.RUNNING)
    assert store.advance("u", "j1", p.TIMEOUT, error="slow")
    assert not store.advance("u", "j1", p.RUNNING)
    assert store.advance("u", "j1", p.COMPLETED, result={"late": True}, error="")
    assert not store.advance("u", "j1", p.FAILED, error="duplicate reply")
    job = store.get("u", "j1")
    assert job.status == p.COMPLETED and job.result == {"late": True}
    with pytest.raises(DuplicateJob):
        store.create("u", "j1", kind=p.JOB_DISPATCH, command="c", target_uuid=None)
    store.create("other-user", "j1", kind=p.JOB_DISPATCH, command="c", target_uuid=None)  # ids are per user
    assert store._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_restart_marks_in_flight_jobs_lost_and_keeps_results(tmp_path):
    store = JobStore(tmp_path / "j.sqlite3")
    store.create("u", "done", kind="k", command="c", target_uuid="p")
    store.advance("u", "done", p.COMPLETED, result=[1, 2])
    store.create("u", "flying", kind="k", command="c", target_uuid="p")
    store.advance("u", "flying", p.RUNNING)
    store.close()
    again = JobStore(tmp_path / "j.sqlite3")
    assert again.recover() == 1
    assert again.get("u", "done").result == [1, 2]
    assert again.get("u", "flying").status == p.LOST
    assert again.advance("u", "flying", p.COMPLETED, result="late but kept")


def test_retention_is_bounded_by_count_and_bytes(tmp_path):
    store = JobStore(tmp_path / "j.sqlite3", max_jobs=5, max_bytes=10_000)
    for i in range(12):
        store.create("u", f"j{i}", kind="k", command="c", target_uuid="p")
        store.advance("u", f"j{i}", p.COMPLETED, result="x" * 3000)
    store.create("u", "open", kind="k", command="c", target_uuid="p")
    store.prune()
    left = [r[0] for r in store._db.execute("SELECT job_id FROM jobs ORDER BY updated")]
    assert "open" in left  # in-flight jobs are never pruned
    assert len(left) <= 5 and "j11" in left and "j0" not in left
