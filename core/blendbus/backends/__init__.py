"""Storage backends: where jobs, peers and wake-ups live (docs/internals.md, docs/deployment.md).

`open_backend` builds one from a URL: `sqlite` (the default: a SQLite job store in the state dir,
peers in this process) or `redis://HOST:PORT/DB?prefix=NAME` (state shared by every replica; also
`redis+sentinel://` and `redis+cluster://`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .backend import Backend

DEFAULT_BACKEND = "sqlite"
REDIS_SCHEMES = ("redis://", "rediss://", "unix://", "redis+sentinel://", "redis+cluster://")
SCHEMES = ("sqlite", *REDIS_SCHEMES)


def open_backend(url: str | None, *, state_dir: Path | None, grace_s: float, **retention: Any) -> Backend:
    """The backend named by `url`; `state_dir` holds the SQLite store (None: in memory), `grace_s` is how
    long a silent peer stays registered, `retention` the job store's caps (sqlite.JobStore's keywords)."""
    url = url or DEFAULT_BACKEND
    if url == "sqlite" or url.startswith("sqlite:"):
        from .sqlite import JobStore
        from .local import local_backend

        return local_backend(JobStore(state_dir / "jobs.sqlite3" if state_dir else ":memory:", **retention), grace_s)
    if url.startswith(REDIS_SCHEMES):
        from .redis import redis_backend

        return redis_backend(url, grace_s, **retention)
    raise ValueError(f"unknown backend {url!r}: use 'sqlite', 'redis://HOST:PORT/DB?prefix=NAME' or"
                     " 'redis+sentinel://HOST:PORT[,HOST:PORT...]/MASTER?prefix=NAME' or"
                     " 'redis+cluster://HOST:PORT[,HOST:PORT...]/?prefix=NAME'")


__all__ = ["Backend", "DEFAULT_BACKEND", "open_backend"]
