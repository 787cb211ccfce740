from __future__ import annotations

import json
import sqlite3
import time

from blendbus import protocol as p
from blendbus.backends.base import DuplicateJob
from blendbus.backends.sqlite import _SCHEMA, LARGE_RESULT_BYTES, JobStore

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


def test_large_results_are_stored_piecewise_and_read_back_whole(tmp_path):
    big = {"mesh": "é" * (LARGE_RESULT_BYTES // 3), "rows": [[i, i / 3, None, True] for i in range(100_000)],
           "nan": float("nan"), "emoji": "\U0001F600" * 10}
    assert len(json.dumps(big, separators=(",", ":"))) > 2 * LARGE_RESULT_BYTES
    store = JobStore(tmp_path / "j.sqlite3", max_bytes=10 * LARGE_RESULT_BYTES)
    store.create("u", "big", kind="k", command="c", target_uuid="p")
    assert store.advance("u", "big", p.COMPLETED, result=big)
    assert not store.advance("u", "big", p.FAILED, result=big)  # still forward-only
    text = json.dumps(big, separators=(",", ":")).encode()
    assert store.get("u", "big", result=False).result_bytes == len(text)
    for offset in (0, LARGE_RESULT_BYTES - 3, 2 * LARGE_RESULT_BYTES, len(text) - 5):  # across pieces too
        assert store.read_result("u", "big", offset, 4096) == (text[offset:offset + 4096], len(text), "json")
    got = JobStore(tmp_path / "j.sqlite3").get("u", "big").result  # as another process would read it
    assert json.dumps(got, sort_keys=True) == json.dumps(big, sort_keys=True)  # (NaN != NaN, so compare JSON)
    # Retention counts large results too: within a 10 MiB budget, newer ones push the oldest out.
    for name in ("b2", "b3", "b4", "b5"):
        store.create("u", name, kind="k", command="c", target_uuid="p")
        store.advance("u", name, p.COMPLETED, result=big)
    store.prune()
    assert store.get("u", "big") is None and store.get("u", "b5") is not None
    kept = {job_id for job_id in ("big", "b2", "b3", "b4", "b5") if store.get("u", job_id, result=False)}
    look = sqlite3.connect(tmp_path / "j.sqlite3")
    assert {job_id for job_id, in look.execute("SELECT DISTINCT job_id FROM pieces")} == kept  # none left behind
    # A page reads within one or two pieces: SQLite walks a blob's pages from its start to find a byte, so
    # what a page at any offset costs is bounded by the largest piece, not by the result.
    assert look.execute("SELECT MAX(LENGTH(data)) FROM pieces").fetchone()[0] == LARGE_RESULT_BYTES
    look.close()


def test_a_large_result_reaches_the_database_file_from_a_thread_of_the_store(tmp_path):
    """The log a large result leaves is copied into the database file by the store's own thread, not
    by the commit on the caller's: the store then holds the result in its file while it stays open,
    the writer's connection checkpoints small commits as before, and closing waits for the copy."""
    path = tmp_path / "j.sqlite3"
    store = JobStore(path, max_bytes=10 * LARGE_RESULT_BYTES)
    text = "x" * (3 * LARGE_RESULT_BYTES)
    store.create("u", "big", kind="k", command="c", target_uuid="p")
    assert store.advance("u", "big", p.COMPLETED, result=text)
    deadline = time.monotonic() + 30
    while path.stat().st_size < len(text) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert path.stat().st_size >= len(text)
    store.create("u", "after", kind="k", command="c", target_uuid="p")
    store.close()
    assert not (tmp_path / "j.sqlite3-wal").exists()  # the last connection checkpointed all of it
    assert JobStore(path).get("u", "big").result == text


def old_store(path, missing: str = "", extra: str = "") -> None:
    """A store written before the column declared by the schema line `missing` (or with the column
    `extra` that it no longer has), holding one job."""
    old = sqlite3.connect(path)
    old.executescript(_SCHEMA.replace(missing, "").replace("    PRIMARY KEY (user_id, job_id)\n",
                                                           extra + "    PRIMARY KEY (user_id, job_id)\n", 1))
    old.execute("INSERT INTO jobs (user_id, job_id, kind, command, status, result, created, updated)"
                " VALUES ('u', 'j', 'k', 'c', 'completed', '[1]', 0, 0)")
    old.commit()
    old.close()


def test_a_store_whose_large_results_are_one_blob_each_has_them_cut_into_pieces(tmp_path):
    """A store from 0.4.3 or older kept each large result in one blob, in a column `large`: opened, it
    keeps every result, and the column is gone."""
    path = tmp_path / "old.sqlite3"
    old_store(path, extra="    large       BLOB,\n")
    text = bytes(range(256)) * (10 * LARGE_RESULT_BYTES // 256 + 7)  # not a whole number of pieces
    old = sqlite3.connect(path)
    old.execute("INSERT INTO jobs (user_id, job_id, kind, command, status, result_format, created, updated, large)"
                " VALUES ('u', 'big', 'k', 'c', 'completed', 'text', 0, 0, ?)", (text,))
    old.commit()
    old.close()
    store = JobStore(path, max_bytes=100 * LARGE_RESULT_BYTES, max_bytes_per_user=100 * LARGE_RESULT_BYTES)
    assert store.get("u", "j").result == [1]
    assert store.get("u", "big").result_data == text
    assert store.read_result("u", "big", 3 * LARGE_RESULT_BYTES - 1, 10) == (
        text[3 * LARGE_RESULT_BYTES - 1:3 * LARGE_RESULT_BYTES + 9], len(text), "text")
    assert store.usage("u")[1] > len(text)
    look = sqlite3.connect(path)
    assert "large" not in {row[1] for row in look.execute("PRAGMA table_info(jobs)")}
    look.close()
    store.create("u", "new", kind="k", command="c", target_uuid="p")
    assert store.advance("u", "new", p.COMPLETED, result="x" * (2 * LARGE_RESULT_BYTES))
    assert len(store.get("u", "new").result) == 2 * LARGE_RESULT_BYTES


def test_a_store_from_before_scene_accounts_gains_the_column_in_place(tmp_path):
    path = tmp_path / "old.sqlite3"
    old_store(path, "    scene       TEXT,\n")
    store = JobStore(path)
    assert store.get("u", "j").result == [1] and store.get("u", "j").scene is None
    store.create("u", "new", kind="k", command="c", target_uuid="p")
    assert store.advance("u", "new", p.CONFLICT, scene={"revision": 3})
    assert store.get("u", "new").envelope()["revision"] == 3
    assert store.usage("u") == JobStore(path).usage("u")  # the scene text is counted like the rest of a row
