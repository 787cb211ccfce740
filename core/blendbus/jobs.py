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

from .protocol import LOST, QUEUED, RUNNING, STATUS_RANK, envelope

DEFAULT_MAX_AGE_S = 7 * 24 * 3600
DEFAULT_MAX_JOBS = 50_000
DEFAULT_MAX_BYTES = 2 * 1024**3
_UNSET: Any = object()

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
    result_json: str | None
    error: str
    progress: float | None
    message: str | None
    created: float
    updated: float

    @property
    def result(self) -> Any:
        return None if self.result_json is None else json.loads(self.result_json)

    def envelope(self) -> dict[str, Any]:
        env = envelope(
            self.status,
            command=self.command,
            target_uuid=self.target_uuid,
            job_id=self.job_id,
            result=self.result,
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
        result_json: str | None = None,
        error: str | None = None,
    ) -> bool:
        """Move a job to `status` if that is forward; returns whether it moved."""
        lower = [s for s, rank in STATUS_RANK.items() if rank < STATUS_RANK[status]]
        if result is not _UNSET:
            result_json = json.dumps(result, separators=(",", ":"))
        sets, args = ["status = ?", "updated = ?"], [status, time.time()]
        if result_json is not None:
            sets.append("result = ?")
            args.append(result_json)
        if error is not None:
            sets.append("error = ?")
            args.append(error)
        marks = ",".join("?" * len(lower))
        cur = self._write(
            f"UPDATE jobs SET {', '.join(sets)} WHERE user_id = ? AND job_id = ? AND status IN ({marks})",
            (*args, user_id, job_id, *lower),
        )
        return cur.rowcount > 0

    def set_progress(self, user_id: str, job_id: str, fraction: float | None, message: str | None) -> None:
        self._write(
            "UPDATE jobs SET progress = ?, message = ?, updated = ? WHERE user_id = ? AND job_id = ?",
            (fraction, message, time.time(), user_id, job_id),
        )

    def get(self, user_id: str, job_id: str) -> Job | None:
        row = self._db.execute(
            "SELECT user_id, job_id, kind, command, target_uuid, status, result, error, progress, message,"
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
        count, size = self._db.execute("SELECT COUNT(*), COALESCE(SUM(LENGTH(result)), 0) FROM jobs").fetchone()
        if count > self.max_jobs or size > self.max_bytes:
            keep_rows = self.max_jobs
            # Walk newest-first and keep rows until either budget is used up.
            total, kept = 0, 0
            for (length,) in self._db.execute(
                "SELECT COALESCE(LENGTH(result), 0) FROM jobs ORDER BY updated DESC"
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
