"""The addon's own command handlers (the built-in plugin's `execute_code`)."""

from __future__ import annotations

from . import scripts
from .jobqueue import Job


def execute_code(code: str, job: Job) -> str:
    return scripts.run(code, f"<job_{job.job_id}>")
