"""The durable record of every job: SQLite in WAL mode under the state dir.

A row is written before a job is routed, so a job that reached a peer can always be looked up
again, including after a server restart. Status only moves forward (protocol.STATUS_RANK), which
makes duplicate or late replies harmless: they can complete a timed-out job but never undo a
completed one.
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .encoding import encodes_over, json_pieces, json_size
from .protocol import LOST, QUEUED, RUNNING, STATUS_RANK, envelope

DEFAULT_MAX_AGE_S = 7 * 24 * 3600
DEFAULT_MAX_JOBS = 50_000
DEFAULT_MAX_BYTES = 2 * 1024**3
_UNSET: Any = object()
LARGE_RESULT_BYTES = 1024 * 1024
"""Results whose JSON is longer than this go to the `large` column, written in pieces of this size.
It is the table's last column: only there does SQLite reserve a zeroblob without materializing it."""
_RESULT = "COALESCE(result, large)"
_RESULT_BYTES = "COALESCE(LENGTH(result), LENGTH(large), 0)"

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
    large       BLOB,
    PRIMARY KEY (user_id, job_id)
);
CREATE INDEX IF NOT EXISTS jobs_updated ON jobs (updated);
"""


class JobStoreError(RuntimeError):
    """The store could not record a job (disk full, read-only state dir, ...)."""


class DuplicateJob(ValueError):
    """This user already has a job with that id."""


@dataclass(frozen=True)
class Job:
    user_id: str
    job_id: str
    kind: str
    command: str
    target_uuid: str | None
    status: str
    result_json: str | bytes | None
    """JSON text; a large result is stored, and read back, as bytes."""
    error: str
    progress: float | None
    message: str | None
    created: float
    updated: float

    @property
    def result(self) -> Any:
        return None if self.result_json is None else json.loads(self.result_json)

    def envelope(self, result: Any = _UNSET) -> dict[str, Any]:
        """The job as a tool result. Pass `result` when it is at hand already decoded: a large result
        is then not decoded a second time from its stored JSON."""
        env = envelope(
            self.status,
            command=self.command,
            target_uuid=self.target_uuid,
            job_id=self.job_id,
            result=self.result if result is _UNSET else result,
            error=self.error,
        )
        if self.progress is not None:
            env["progress"] = {"fraction": self.progress, "message": self.message or ""}
        return env


class JobStore:
    """Jobs keyed by (user_id, job_id). One connection, used from the server's event loop."""

    def __init__(
        self,
        path: Path | str = ":memory:",
        *,
        max_age_s: float = DEFAULT_MAX_AGE_S,
        max_jobs: int = DEFAULT_MAX_JOBS,
        max_bytes: int = DEFAULT_MAX_BYTES,
    ) -> None:
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.path = str(path)
        self.max_age_s, self.max_jobs, self.max_bytes = max_age_s, max_jobs, max_bytes
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode survives a process crash; only an OS crash can lose the last commits.
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        if "large" not in {row[1] for row in self._db.execute("PRAGMA table_info(jobs)")}:  # a store from 0.1.0
            self._db.execute("ALTER TABLE jobs ADD COLUMN large BLOB")
        self._writes = 0

    def close(self) -> None:
        self._db.close()

    def _write(self, sql: str, args: tuple[Any, ...]) -> sqlite3.Cursor:
        try:
            return self._db.execute(sql, args)
        except sqlite3.IntegrityError:
            raise
        except sqlite3.Error as exc:
            raise JobStoreError(f"the job store at {self.path} refused a write: {exc}") from exc

    def create(
        self, user_id: str, job_id: str, *, kind: str, command: str, target_uuid: str | None
    ) -> None:
        now = time.time()
        try:
            self._write(
                "INSERT INTO jobs (user_id, job_id, kind, command, target_uuid, status, created, updated)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (user_id, job_id, kind, command, target_uuid, QUEUED, now, now),
            )
        except sqlite3.IntegrityError:
            raise DuplicateJob(f"job id {job_id!r} is already used; choose another or omit it") from None
        self._writes += 1
        if self._writes % 1000 == 0:
            self.prune()

    def advance(
        self,
        user_id: str,
        job_id: str,
        status: str,
        *,
        result: Any = _UNSET,
        error: str | None = None,
    ) -> bool:
        """Move a job to `status` if that is forward; returns whether it moved."""
        lower = [s for s, rank in STATUS_RANK.items() if rank < STATUS_RANK[status]]
        sets, args = ["status = ?", "updated = ?"], [status, time.time()]
        size = 0
        if result is not _UNSET:
            size = json_size(result, LARGE_RESULT_BYTES) if encodes_over(result, LARGE_RESULT_BYTES) else 0
            if size > LARGE_RESULT_BYTES:
                sets.append("result = NULL, large = zeroblob(?)")
                args.append(size)
            else:
                sets.append("result = ?, large = NULL")
                args.append(json.dumps(result, separators=(",", ":")))
        if error is not None:
            sets.append("error = ?")
            args.append(error)
        marks = ",".join("?" * len(lower))
        update = (f"UPDATE jobs SET {', '.join(sets)} WHERE user_id = ? AND job_id = ? AND status IN ({marks})"
                  " RETURNING rowid")
        update_args = (*args, user_id, job_id, *lower)
        if size <= LARGE_RESULT_BYTES:
            return bool(self._write(update, update_args).fetchall())
        return self._write_large(update, update_args, result)

    def _write_large(self, update: str, args: tuple[Any, ...], result: Any) -> bool:
        """Store a large result piecewise, in one transaction with its status. Bound as one value, its
        JSON would exist whole in memory, and SQLite would copy it again while building the row."""
        try:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                rows = self._db.execute(update, args).fetchall()
                if rows:
                    with self._db.blobopen("jobs", "large", rows[0][0]) as blob:
                        for piece in json_pieces(result, LARGE_RESULT_BYTES):
                            blob.write(piece.encode("ascii"))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise JobStoreError(f"the job store at {self.path} refused a write: {exc}") from exc
        return bool(rows)

    def set_progress(self, user_id: str, job_id: str, fraction: float | None, message: str | None) -> None:
        self._write(
            "UPDATE jobs SET progress = ?, message = ?, updated = ? WHERE user_id = ? AND job_id = ?",
            (fraction, message, time.time(), user_id, job_id),
        )

    def get(self, user_id: str, job_id: str) -> Job | None:
        row = self._db.execute(
            f"SELECT user_id, job_id, kind, command, target_uuid, status, {_RESULT}, error, progress, message,"
            " created, updated FROM jobs WHERE user_id = ? AND job_id = ?",
            (user_id, job_id),
        ).fetchone()
        return Job(*row) if row else None

    def in_flight(self, user_id: str, target_uuid: str) -> list[str]:
        rows = self._db.execute(
            "SELECT job_id FROM jobs WHERE user_id = ? AND target_uuid = ? AND status IN (?, ?)",
            (user_id, target_uuid, QUEUED, RUNNING),
        ).fetchall()
        return [r[0] for r in rows]

    def recover(self) -> int:
        """After a restart nobody waits on in-flight jobs: mark them lost; a late reply still lands."""
        cur = self._write(
            "UPDATE jobs SET status = ?, error = ?, updated = ? WHERE status IN (?, ?)",
            (LOST, "the server restarted while this job was in flight; a late reply from the peer is still recorded",
             time.time(), QUEUED, RUNNING),
        )
        return cur.rowcount

    def prune(self) -> int:
        """Retention: drop finished jobs older than max_age_s, then the oldest beyond max_jobs/max_bytes."""
        open_ = (QUEUED, RUNNING)
        removed = self._write(
            "DELETE FROM jobs WHERE updated < ? AND status NOT IN (?, ?)", (time.time() - self.max_age_s, *open_)
        ).rowcount
        count, size = self._db.execute(f"SELECT COUNT(*), COALESCE(SUM({_RESULT_BYTES}), 0) FROM jobs").fetchone()
        if count > self.max_jobs or size > self.max_bytes:
            keep_rows = self.max_jobs
            # Walk newest-first and keep rows until either budget is used up.
            total, kept = 0, 0
            for (length,) in self._db.execute(
                f"SELECT {_RESULT_BYTES} FROM jobs ORDER BY updated DESC"
            ):
                if kept >= keep_rows or total + length > self.max_bytes:
                    break
                total += length
                kept += 1
            removed += self._write(
                "DELETE FROM jobs WHERE status NOT IN (?, ?) AND rowid NOT IN"
                " (SELECT rowid FROM jobs ORDER BY updated DESC LIMIT ?)",
                (*open_, kept),
            ).rowcount
        return removed
