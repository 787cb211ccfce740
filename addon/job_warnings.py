"""Python warnings raised while a job's code runs are written to the job's log (`job.log`), so the
client that called it hears them (a deprecated bpy API, a lossy export), not only Blender's console.

Routed per thread, as scripts.py routes stdout: two jobs running at once each get their own, and a
warning raised outside any job goes where Python sends it anyway. Python's own filters still decide
whether a warning is shown at all.
"""

from __future__ import annotations

import os
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from .jobqueue import Job

_local = threading.local()
_shown = warnings.showwarning
"""Where warnings went before `written_to` first routed them (they still go there)."""


def _show(message: Warning | str, category: type[Warning], filename: str, lineno: int,
          file: Any = None, line: str | None = None) -> None:
    _shown(message, category, filename, lineno, file, line)  # stderr too: it is part of a script's output
    job: Job | None = getattr(_local, "job", None)
    if job is not None and file is None:
        job.log("warning", f"{category.__name__}: {message} ({os.path.basename(filename)}:{lineno})")


@contextmanager
def written_to(job: Job) -> Iterator[None]:
    """Warnings raised on this thread for the duration go to `job`'s log."""
    global _shown
    if warnings.showwarning is not _show:
        _shown, warnings.showwarning = warnings.showwarning, _show
    previous = getattr(_local, "job", None)
    _local.job = job
    try:
        yield
    finally:
        _local.job = previous
