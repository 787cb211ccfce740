"""Exclusive claims on state held by one process at a time: a server's state dir, a peer's uuid.

A claim is an advisory lock (flock) on a small file, held for the life of the process and released
by the operating system when the process ends, however it ends: no stale lock files to clean up.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import IO


class Claim:
    """A held lock; keep the object alive for as long as the claim must hold."""

    def __init__(self, path: Path, handle: IO[str]) -> None:
        self.path, self._handle = path, handle

    def release(self) -> None:
        self._handle.close()


def claim(lock_file: Path) -> Claim | None:
    """Take `lock_file`'s lock, or None if another process holds it."""
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    handle = open(lock_file, "a+")  # noqa: SIM115 - held open for the life of the claim
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    handle.seek(0)
    handle.truncate()
    handle.write(f"{os.getpid()}\n")
    handle.flush()
    return Claim(lock_file, handle)


def holder(lock_file: Path) -> str:
    """The pid written by whoever holds (or last held) `lock_file`, for messages."""
    try:
        return lock_file.read_text().strip() or "?"
    except OSError:
        return "?"
