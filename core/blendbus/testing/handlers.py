"""Handlers of the test plugin. Plain Python, so they run on the Python test peer and in Blender."""

from __future__ import annotations

import time
from typing import Any


def noop() -> None:
    return None


def echo(value: Any) -> dict[str, Any]:
    return {"echo": value}


def sleep(seconds: float, job: Any, steps: int = 0) -> float:
    for i in range(steps):
        time.sleep(seconds / max(steps, 1))
        job.progress((i + 1) / steps, f"step {i + 1} of {steps}")
        if job.cancelled:
            return -1.0
    if not steps:
        time.sleep(seconds)
    return seconds


def fail(message: str) -> None:
    raise RuntimeError(message)


def size(nbytes: int) -> str:
    return "x" * nbytes


def background(seconds: float, job: Any, steps: int = 0) -> Any:
    """A generator handler: the sleep runs off the main thread, the answer is built on it."""
    import threading

    worker = yield job.background(lambda: (time.sleep(seconds), threading.current_thread().name)[1])
    if steps < 0:
        raise ValueError("never")
    return {"slept": seconds, "worker": worker, "answered_on": threading.current_thread().name}
