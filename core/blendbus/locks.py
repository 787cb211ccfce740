"""Exclusive claims on state held by one process at a time: a server's state dir, a peer's uuid.

A claim is an advisory lock (flock) on a small file, held for the life of the process and released
by the operating system when the process ends, however it ends: no stale lock files to clean up.
"""

from __future__ import annotations

import fcntl
import os
import sys
from pathlib import Path
from typing import IO

import platformdirs


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


def default_state_dir() -> Path:
    return Path(os.environ.get("BLENDBUS_STATE_DIR") or platformdirs.user_state_dir("blendbus"))


def claim_state_dir(wanted: Path) -> tuple[Path, Claim]:
    """The state dir this server holds while it runs: `wanted`, or, when another server holds that
    one (whose running jobs must not be marked lost), the first free `wanted/more/N`, said on stderr."""
    for candidate in [wanted, *(wanted / "more" / str(n) for n in range(2, 100))]:
        held = claim(candidate / "server.lock")
        if held is not None:
            if candidate != wanted:
                print(f"blendbus: the state dir {wanted} is in use by another server (pid"
                      f" {holder(wanted / 'server.lock')}); this one keeps its jobs in {candidate}."
                      " Pass --state-dir to choose.", file=sys.stderr, flush=True)
            return candidate, held
    raise ValueError(f"100 blendbus servers already run on the state dir {wanted}; pass --state-dir")
