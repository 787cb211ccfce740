"""The addon's own command handlers (the built-in plugin's `execute_code`, `undo_job`, `list_changes`)."""

from __future__ import annotations

from typing import Any

from . import scripts
from .jobqueue import Job


def execute_code(code: str, job: Job) -> str:
    return scripts.run(code, f"<job_{job.job_id}>")


def undo_job(job_id: str, job: Job, cascade: bool = False) -> dict[str, Any]:
    return job.history.undo(job_id, cascade)


def list_changes(job: Job, since_revision: int = 0) -> dict[str, Any]:
    return {"revision": job.history.scene.revision, "changes": job.history.changes(since_revision)}
