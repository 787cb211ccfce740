"""The in-process backend's job store: SQLite in WAL mode under the state dir, and its `Jobs` face.

A row is written before a job is routed, so a job that reached a peer can always be looked up
again, including after a server restart. Status only moves forward (protocol.STATUS_RANK), which
makes duplicate or late replies harmless: they can complete a timed-out job but never undo a
completed one.

One module on purpose: the schema, the SQL that reads and writes it, and the retention that prunes
it must change together.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import sqlite3
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from ..encoding import encodes_over, text_pieces, text_size
from ..paging import result_format
from ..protocol import LOST, OPEN_STATUSES, QUEUED, STATUS_RANK
from .base import (DEFAULT_MAX_AGE_S, DEFAULT_MAX_BYTES, DEFAULT_MAX_BYTES_PER_USER, DEFAULT_MAX_JOBS,
                   DEFAULT_MAX_JOBS_PER_USER, ROW_OVERHEAD_BYTES, DuplicateJob, JobStoreError, OverQuota)
from .snapshots import UNSET as _UNSET
from .snapshots import Job

LARGE_RESULT_BYTES = 1024 * 1024
"""A result text longer than this is kept in `pieces`, rows of this many bytes (the last one shorter),
and a page is read from the one or two pieces that hold it (blob I/O). SQLite finds a byte of a blob by
following the blob's pages from its start, so in one blob of 64 MiB a page near the end cost 20 times
one near the start; within a piece of 1 MiB it costs the same anywhere. Written as rows, a result is
also written once: a blob of a set size would first be written as zeros (zeroblob)."""
WAL_AUTOCHECKPOINT_PAGES = 1000
"""SQLite's default: a commit that leaves the log this long copies it into the database file first.
A large result's commit leaves that copy (and its fsync) to a thread instead (`JobStore.checkpoint`)."""

log = logging.getLogger(__name__)
_COLUMNS = "user_id, job_id, kind, command, target_uuid, status, {data}, error, progress, message, created, updated"
_PIECES_BYTES = ("(SELECT SUM(LENGTH(data)) FROM pieces"
                 " WHERE pieces.user_id = jobs.user_id AND pieces.job_id = jobs.job_id)")
"""The length of a large result, from its pieces' headers (LENGTH of a blob does not read it)."""
_META = f"result_format, COALESCE(LENGTH(CAST(result AS BLOB)), {_PIECES_BYTES}), scene"
"""A row's result format, result size and scene account: what a job without its result still says
about it."""
_ROW_BYTES = (f"({ROW_OVERHEAD_BYTES} + LENGTH(CAST(user_id AS BLOB)) + LENGTH(CAST(job_id AS BLOB))"
              " + LENGTH(CAST(kind AS BLOB)) + LENGTH(CAST(command AS BLOB))"
              " + COALESCE(LENGTH(CAST(target_uuid AS BLOB)), 0)"
              f" + COALESCE(LENGTH(CAST(result AS BLOB)), {_PIECES_BYTES}, 0) + LENGTH(CAST(error AS BLOB))"
              " + COALESCE(LENGTH(CAST(message AS BLOB)), 0)"
              " + COALESCE(LENGTH(CAST(scene AS BLOB)), 0) + payload_bytes)")
"""Every byte a row stores, and its payload while that waits for Blender: what the size caps count."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    user_id     TEXT NOT NULL,
    job_id      TEXT NOT NULL,
    kind        TEXT NOT NULL,
    command     TEXT NOT NULL,
    target_uuid TEXT,
    status      TEXT NOT NULL,
    result      TEXT,
    error       TEXT NOT NULL DEFAULT '',
    progress    REAL,
    message     TEXT,
    created     REAL NOT NULL,
    updated     REAL NOT NULL,
    payload_bytes INTEGER NOT NULL DEFAULT 0,
    result_format TEXT NOT NULL DEFAULT 'json',
    scene       TEXT,
    PRIMARY KEY (user_id, job_id)
);
CREATE INDEX IF NOT EXISTS jobs_updated ON jobs (updated);
CREATE INDEX IF NOT EXISTS jobs_user_updated ON jobs (user_id, updated);
CREATE TABLE IF NOT EXISTS pieces (
    user_id     TEXT NOT NULL,
    job_id      TEXT NOT NULL,
    n           INTEGER NOT NULL,
    data        BLOB NOT NULL,
    PRIMARY KEY (user_id, job_id, n)
);
CREATE TRIGGER IF NOT EXISTS jobs_deleted AFTER DELETE ON jobs
BEGIN DELETE FROM pieces WHERE user_id = old.user_id AND job_id = old.job_id; END;
CREATE TRIGGER IF NOT EXISTS jobs_result_replaced AFTER UPDATE OF result ON jobs WHEN new.result IS NOT NULL
BEGIN DELETE FROM pieces WHERE user_id = new.user_id AND job_id = new.job_id; END;
"""
"""A large result's pieces are found by its job's key, which VACUUM keeps (it may renumber rowids)."""
_ADDED_COLUMNS = {
    "payload_bytes": "INTEGER NOT NULL DEFAULT 0",  # a store from 0.3 or older
    "result_format": "TEXT NOT NULL DEFAULT 'json'",  # a store from 0.3 or older: every result is JSON
    "scene": "TEXT",  # a store from 0.4 or older
}
"""Columns a store from an older version lacks, added in place when it is opened."""


class JobStore:
    """Jobs keyed by (user_id, job_id). One connection, used from the server's event loop.

    Size caps hold after every write, and per user: each user keeps at most `max_jobs_per_user`
    finished jobs and `max_bytes_per_user` stored bytes (every byte of a row is counted), and when the
    whole store passes `max_jobs` or `max_bytes` only users above their fair share (the cap divided
    by the users with jobs) lose their oldest finished jobs. So no user's traffic evicts another
    user's history. Freed pages go back to the file system (incremental vacuum)."""

    def __init__(
        self,
        path: Path | str = ":memory:",
        *,
        max_age_s: float = DEFAULT_MAX_AGE_S,
        max_jobs: int = DEFAULT_MAX_JOBS,
        max_bytes: int = DEFAULT_MAX_BYTES,
        max_jobs_per_user: int = DEFAULT_MAX_JOBS_PER_USER,
        max_bytes_per_user: int = DEFAULT_MAX_BYTES_PER_USER,
    ) -> None:
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.path = str(path)
        self.max_age_s, self.max_jobs, self.max_bytes = max_age_s, max_jobs, max_bytes
        self.max_jobs_per_user = min(max_jobs_per_user, max_jobs)
        self.max_bytes_per_user = min(max_bytes_per_user, max_bytes)
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        if self._db.execute("PRAGMA auto_vacuum").fetchone()[0] != 2:  # a new file, or a store from 0.1
            self._db.execute("PRAGMA auto_vacuum=INCREMENTAL")
            self._db.execute("VACUUM")  # applies it to an existing file; instant on a new one
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(f"PRAGMA wal_autocheckpoint={WAL_AUTOCHECKPOINT_PAGES}")
        # NORMAL in WAL mode survives a process crash; only an OS crash can lose the last commits.
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(jobs)")}
        for column, declared in _ADDED_COLUMNS.items():
            if column not in columns:
                self._db.execute(f"ALTER TABLE jobs ADD COLUMN {column} {declared}")
        if "large" in columns:  # a store from 0.4.3 or older: each large result is one blob
            self._cut_large()
        self._usage: dict[str, list[int]] = {
            user: [count, size] for user, count, size in
            self._db.execute(f"SELECT user_id, COUNT(*), SUM({_ROW_BYTES}) FROM jobs GROUP BY user_id")}
        """user_id -> [jobs, stored bytes], kept current by every write."""
        self._writes = 0
        self._checkpoints: ThreadPoolExecutor | None = None
        """One thread for the checkpoints large writes leave, started by the first."""

    def close(self) -> None:
        if self._checkpoints is not None:
            self._checkpoints.shutdown()
        self._db.close()

    def checkpoint(self) -> None:
        """Copy the write-ahead log into the database file, on a connection of its own (a passive
        checkpoint: it takes no lock that readers or writers wait for). A failure loses nothing: the
        log keeps the commits, and the next commit or checkpoint copies them."""
        try:
            db = sqlite3.connect(self.path, isolation_level=None)
            try:
                db.execute("PRAGMA wal_checkpoint(PASSIVE)")
            finally:
                db.close()
        except sqlite3.Error as exc:
            log.warning("the job store at %s could not checkpoint its log: %s", self.path, exc)

    def _cut_large(self) -> None:
        """Move the large results of a store from before `pieces` into pieces, and drop their column."""
        try:
            self._db.execute("BEGIN IMMEDIATE")
            rows = self._db.execute("SELECT rowid, user_id, job_id FROM jobs WHERE large IS NOT NULL").fetchall()
            for rowid, user_id, job_id in rows:
                with self._db.blobopen("jobs", "large", rowid, readonly=True) as blob:
                    self._add_pieces(user_id, job_id, iter(lambda: blob.read(LARGE_RESULT_BYTES), b""))
            self._db.execute("ALTER TABLE jobs DROP COLUMN large")
            self._db.execute("COMMIT")
        except sqlite3.Error as exc:
            self._db.execute("ROLLBACK")
            raise JobStoreError(f"the job store at {self.path} could not be brought up to date: {exc}") from exc

    def _add_pieces(self, user_id: str, job_id: str, text: Iterable[bytes]) -> None:
        """Store a result text given in pieces of any size as rows of LARGE_RESULT_BYTES each."""
        rows = ((user_id, job_id, n, piece) for n, piece in enumerate(_exactly(text, LARGE_RESULT_BYTES)))
        self._db.executemany("INSERT INTO pieces VALUES (?, ?, ?, ?)", rows)

    def usage(self, user_id: str) -> tuple[int, int]:
        """(jobs, stored bytes) of one user, as the caps count them."""
        count, size = self._usage.get(user_id, (0, 0))
        return count, size

    def users(self) -> list[str]:
        """Every user with jobs kept, sorted."""
        return sorted(user for user, (count, _) in self._usage.items() if count)

    def total(self) -> tuple[int, int]:
        """(jobs, stored bytes) of the whole store."""
        return sum(c for c, _ in self._usage.values()), sum(b for _, b in self._usage.values())

    def _row_bytes(self, user_id: str, job_id: str) -> int:
        row = self._db.execute(f"SELECT {_ROW_BYTES} FROM jobs WHERE user_id = ? AND job_id = ?",
                               (user_id, job_id)).fetchone()
        return int(row[0]) if row else 0

    def _grew(self, user_id: str, jobs: int, size: int) -> None:
        usage = self._usage.setdefault(user_id, [0, 0])
        usage[0] += jobs
        usage[1] += size
        if not usage[0]:
            del self._usage[user_id]

    def _write(self, sql: str, args: tuple[Any, ...]) -> sqlite3.Cursor:
        try:
            return self._db.execute(sql, args)
        except sqlite3.IntegrityError:
            raise
        except sqlite3.Error as exc:
            raise JobStoreError(f"the job store at {self.path} refused a write: {exc}") from exc

    def create(
        self, user_id: str, job_id: str, *, kind: str, command: str, target_uuid: str | None, payload_bytes: int = 0
    ) -> None:
        """A new queued job, its payload counted until it ends (OverQuota when that cannot fit)."""
        now = time.time()
        try:
            self._write(
                "INSERT INTO jobs (user_id, job_id, kind, command, target_uuid, status, created, updated, payload_bytes)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (user_id, job_id, kind, command, target_uuid, QUEUED, now, now, payload_bytes),
            )
        except sqlite3.IntegrityError:
            raise DuplicateJob(f"job id {job_id!r} is already used; choose another or omit it") from None
        row = self._row_bytes(user_id, job_id)
        self._grew(user_id, 1, row)
        self._writes += 1
        if self._writes % 1000 == 0:  # age-based retention; the size caps hold after every write
            self.prune()
        else:
            self._fit(user_id, keep=job_id)
        (jobs, size), (all_jobs, all_bytes) = self.usage(user_id), self.total()
        if jobs > self.max_jobs_per_user or size > self.max_bytes_per_user:  # the rest is in flight: no room
            refusal = OverQuota.of_user(jobs - 1, size - row, self.max_jobs_per_user, self.max_bytes_per_user)
        elif all_jobs > self.max_jobs or all_bytes > self.max_bytes:
            refusal = OverQuota.of_store(all_jobs - 1, all_bytes - row)
        else:
            return
        self._write("DELETE FROM jobs WHERE user_id = ? AND job_id = ?", (user_id, job_id))
        self._grew(user_id, -1, -row)
        raise refusal

    def advance(
        self,
        user_id: str,
        job_id: str,
        status: str,
        *,
        result: Any = _UNSET,
        error: str | None = None,
        scene: dict[str, Any] | None = None,
    ) -> bool:
        """Move a job to `status` if that is forward; returns whether it moved."""
        lower = [s for s, rank in STATUS_RANK.items() if rank < STATUS_RANK[status]]
        sets, args = ["status = ?", "updated = ?"], [status, time.time()]
        size = 0
        if result is not _UNSET:
            size = text_size(result, LARGE_RESULT_BYTES) if encodes_over(result, LARGE_RESULT_BYTES) else 0
            sets.append("result_format = ?")
            args.append(result_format(result))
            if size > LARGE_RESULT_BYTES:
                sets.append("result = NULL")
            else:
                sets.append("result = ?")  # (a trigger drops the pieces of a result it replaces)
                args.append(result if isinstance(result, str) else json.dumps(result, separators=(",", ":")))
        if error is not None:
            sets.append("error = ?")
            args.append(error)
        if scene is not None:
            sets.append("scene = ?")
            args.append(json.dumps(scene, separators=(",", ":")))
        if status not in OPEN_STATUSES:
            sets.append("payload_bytes = 0")  # the peer has the payload, or never will
        marks = ",".join("?" * len(lower))
        update = (f"UPDATE jobs SET {', '.join(sets)} WHERE user_id = ? AND job_id = ? AND status IN ({marks})"
                  " RETURNING rowid")
        update_args = (*args, user_id, job_id, *lower)
        before = self._row_bytes(user_id, job_id)
        if size <= LARGE_RESULT_BYTES:
            moved = bool(self._write(update, update_args).fetchall())
        else:
            moved = self._write_large(update, update_args, user_id, job_id, result)
        if moved:
            self._grew(user_id, 0, self._row_bytes(user_id, job_id) - before)
            self._fit(user_id, keep=job_id)
        return moved

    def _write_large(self, update: str, args: tuple[Any, ...], user_id: str, job_id: str, result: Any) -> bool:
        """Store a large result as pieces, in one transaction with its status. Bound as one value, its
        text would exist whole in memory, and SQLite would copy it again while building the row."""
        try:
            self._db.execute("PRAGMA wal_autocheckpoint=0")  # copying the log would hold the loop: a thread does
            self._db.execute("BEGIN IMMEDIATE")
            try:
                rows = self._db.execute(update, args).fetchall()
                if rows:
                    self._db.execute("DELETE FROM pieces WHERE user_id = ? AND job_id = ?", (user_id, job_id))
                    self._add_pieces(user_id, job_id, text_pieces(result, LARGE_RESULT_BYTES))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            finally:
                self._db.execute(f"PRAGMA wal_autocheckpoint={WAL_AUTOCHECKPOINT_PAGES}")
        except sqlite3.Error as exc:
            raise JobStoreError(f"the job store at {self.path} refused a write: {exc}") from exc
        if rows and self.path != ":memory:":
            if self._checkpoints is None:
                self._checkpoints = ThreadPoolExecutor(1, thread_name_prefix="blendbus-checkpoint")
            self._checkpoints.submit(self.checkpoint)
        return bool(rows)

    def set_progress(self, user_id: str, job_id: str, fraction: float | None, message: str | None) -> None:
        before = self._row_bytes(user_id, job_id)
        self._write(
            "UPDATE jobs SET progress = ?, message = ?, updated = ? WHERE user_id = ? AND job_id = ?",
            (fraction, message, time.time(), user_id, job_id),
        )
        self._grew(user_id, 0, self._row_bytes(user_id, job_id) - before)
        self._fit(user_id, keep=job_id)

    def get(self, user_id: str, job_id: str, *, result: bool = True) -> Job | None:
        """The job; without its result text when not `result` (its format and size are still given)."""
        row = self._db.execute(f"SELECT {_COLUMNS.format(data='result' if result else 'NULL')}, {_META} FROM jobs"
                               " WHERE user_id = ? AND job_id = ?", (user_id, job_id)).fetchone()
        if row is None:
            return None
        job = _job(row)
        if result and job.result_data is None and job.result_bytes is not None:  # kept in pieces
            data = b"".join(piece for piece, in self._db.execute(
                "SELECT data FROM pieces WHERE user_id = ? AND job_id = ? ORDER BY n", (user_id, job_id)))
            job = dataclasses.replace(job, result_data=data)
        return job

    def read_result(self, user_id: str, job_id: str, offset: int, length: int) -> tuple[bytes, int, str] | None:
        """Bytes [offset, offset + length) of the stored result text, its whole length and its format;
        a large result is read from the pieces that hold those bytes, only those bytes."""
        row = self._db.execute(f"SELECT rowid, result IS NULL, {_META} FROM jobs WHERE user_id = ? AND job_id = ?",
                               (user_id, job_id)).fetchone()
        if row is None or row[3] is None:
            return None
        rowid, large, fmt, total, _ = row
        offset, length = min(max(offset, 0), total), max(0, min(length, total - max(offset, 0)))
        if large:
            first, last = offset // LARGE_RESULT_BYTES, (offset + max(length, 1) - 1) // LARGE_RESULT_BYTES
            data, at = bytearray(), offset - first * LARGE_RESULT_BYTES
            pieces = self._db.execute("SELECT rowid FROM pieces WHERE user_id = ? AND job_id = ? AND n BETWEEN ? AND ?"
                                      " ORDER BY n", (user_id, job_id, first, last)).fetchall()
            for (piece,) in pieces:
                with self._db.blobopen("pieces", "data", piece, readonly=True) as blob:
                    blob.seek(at)
                    data += blob.read(length - len(data))
                at = 0
            return bytes(data), total, fmt
        piece = self._db.execute("SELECT substr(CAST(result AS BLOB), ?, ?) FROM jobs WHERE rowid = ?",
                                 (offset + 1, length, rowid)).fetchone()[0]
        return bytes(piece or b""), total, fmt

    def recent(self, user_id: str, limit: int, before: float | None = None) -> list[Job]:
        """A user's newest jobs (created before `before`, if given), newest first, without their results."""
        rows = self._db.execute(
            f"SELECT {_COLUMNS.format(data='NULL')}, {_META} FROM jobs WHERE user_id = ? AND created < ?"
            " ORDER BY created DESC LIMIT ?", (user_id, before if before is not None else float("inf"), limit),
        ).fetchall()
        return [_job(row) for row in rows]

    def in_flight(self, user_id: str, target_uuid: str) -> list[str]:
        rows = self._db.execute(
            "SELECT job_id FROM jobs WHERE user_id = ? AND target_uuid = ? AND status IN (?, ?)",
            (user_id, target_uuid, *OPEN_STATUSES),
        ).fetchall()
        return [r[0] for r in rows]

    def recover(self) -> int:
        """After a restart nobody waits on in-flight jobs: mark them lost; a late reply still lands."""
        cur = self._write(
            "UPDATE jobs SET status = ?, error = ?, updated = ? WHERE status IN (?, ?)",
            (LOST, "the server restarted while this job was in flight; a late reply from the peer is still recorded",
             time.time(), *OPEN_STATUSES),
        )
        return cur.rowcount

    def prune(self) -> int:
        """Retention: drop finished jobs older than max_age_s, then fit every user within the caps."""
        removed = self._write(
            "DELETE FROM jobs WHERE updated < ? AND status NOT IN (?, ?)",
            (time.time() - self.max_age_s, *OPEN_STATUSES),
        ).rowcount
        if removed:
            self._usage = {user: [count, size] for user, count, size in self._db.execute(
                f"SELECT user_id, COUNT(*), SUM({_ROW_BYTES}) FROM jobs GROUP BY user_id")}
        for user_id in list(self._usage):
            removed += self._fit(user_id, keep=None, reclaim=False)
        if removed:
            self._reclaim()
        return removed

    def _fit(self, user_id: str, *, keep: str | None, reclaim: bool = True) -> int:
        """Bring `user_id` within the per-user caps, then, if the store is over its caps, every user above
        their fair share down to it; `keep` (the job just written) stays. Returns the jobs removed."""
        removed = self._trim(user_id, self.max_jobs_per_user, self.max_bytes_per_user, keep)
        jobs, size = self.total()
        if jobs > self.max_jobs or size > self.max_bytes:
            share_jobs, share_bytes = self.max_jobs // len(self._usage), self.max_bytes // len(self._usage)
            for user in list(self._usage):
                removed += self._trim(user, share_jobs, share_bytes, keep if user == user_id else None)
        if removed and reclaim:
            self._reclaim()
        return removed

    def _trim(self, user_id: str, max_jobs: int, max_bytes: int, keep: str | None) -> int:
        """Drop `user_id`'s oldest finished jobs until they have at most max_jobs and max_bytes."""
        count, size = self.usage(user_id)
        if count <= max_jobs and size <= max_bytes:
            return 0
        victims, freed = [], 0
        for rowid, job_id, nbytes in self._db.execute(
            f"SELECT rowid, job_id, {_ROW_BYTES} FROM jobs WHERE user_id = ? AND status NOT IN (?, ?)"
            " ORDER BY updated", (user_id, *OPEN_STATUSES),
        ):
            if count - len(victims) <= max_jobs and size - freed <= max_bytes:
                break
            if job_id != keep:
                victims.append(rowid)
                freed += nbytes
        for i in range(0, len(victims), 500):
            chunk = victims[i:i + 500]
            self._write(f"DELETE FROM jobs WHERE rowid IN ({','.join('?' * len(chunk))})", tuple(chunk))
        self._grew(user_id, -len(victims), -freed)
        return len(victims)

    def _reclaim(self) -> None:
        """Hand the pages freed by deleted jobs back to the file system."""
        try:  # executescript runs the pragma to completion; execute() would free a single page
            self._db.executescript("PRAGMA incremental_vacuum;")
        except sqlite3.Error as exc:
            raise JobStoreError(f"the job store at {self.path} could not reclaim space: {exc}") from exc


def _exactly(pieces: Iterable[bytes], size: int) -> Iterator[bytes]:
    """`pieces` joined and cut again into pieces of `size` bytes, the last one shorter; a piece that
    already has the size passes through uncopied (a string result's, when it is ASCII)."""
    held = bytearray()
    for piece in pieces:
        if not held and len(piece) == size:
            yield piece
            continue
        held += piece
        while len(held) >= size:
            yield bytes(held[:size])
            del held[:size]
    if held:
        yield bytes(held)


def _job(row: tuple[Any, ...]) -> Job:
    """A job from a row of `_COLUMNS` and `_META` (its scene account is stored as JSON)."""
    *fields, scene = row
    return Job(*fields, scene=json.loads(scene) if scene else None)


class SqliteJobs:
    """`Jobs` over a `JobStore`: its calls are quick and local, so they run on the loop, with no thread."""

    def __init__(self, store: JobStore) -> None:
        self.store = store
        self.max_age_s = store.max_age_s

    async def create(self, user_id: str, job_id: str, *, kind: str, command: str, target_uuid: str | None,
                     payload_bytes: int = 0) -> None:
        self.store.create(user_id, job_id, kind=kind, command=command, target_uuid=target_uuid,
                          payload_bytes=payload_bytes)

    async def advance(self, user_id: str, job_id: str, status: str, *, result: Any = _UNSET,
                      error: str | None = None, scene: dict[str, Any] | None = None) -> bool:
        return self.store.advance(user_id, job_id, status, result=result, error=error, scene=scene)

    async def set_progress(self, user_id: str, job_id: str, fraction: float | None, message: str | None) -> None:
        self.store.set_progress(user_id, job_id, fraction, message)

    async def get(self, user_id: str, job_id: str, *, result: bool = True) -> Job | None:
        return self.store.get(user_id, job_id, result=result)

    async def read_result(self, user_id: str, job_id: str, offset: int, length: int) -> tuple[bytes, int, str] | None:
        return self.store.read_result(user_id, job_id, offset, length)

    async def recent(self, user_id: str, limit: int, before: float | None = None) -> list[Job]:
        return self.store.recent(user_id, limit, before)

    async def in_flight(self, user_id: str, target_uuid: str) -> list[str]:
        return self.store.in_flight(user_id, target_uuid)

    async def recover(self) -> int:
        return self.store.recover()

    async def prune(self) -> int:
        return self.store.prune()

    async def usage(self, user_id: str) -> tuple[int, int]:
        return self.store.usage(user_id)

    async def users(self) -> list[str]:
        return self.store.users()

    async def close(self) -> None:
        self.store.close()
