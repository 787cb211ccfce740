"""Futures keyed on (user_id, job_id): how a tool call waits for the peer's reply.

A waiter is registered before the dispatch is sent, so a reply can never arrive "too early".
Several waiters may watch one job (the dispatching call and any `blender_get_job(wait_s=...)`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Protocol


class ProgressFn(Protocol):
    """Tells a waiting caller how its job goes: progress (a fraction, a message), or with `level` a log
    line the job wrote (`message` at one of protocol.LOG_LEVELS)."""

    async def __call__(self, fraction: float | None, message: str | None, level: str | None = None) -> None: ...


Key = tuple[str, str]


class JobWaiter:
    def __init__(self) -> None:
        self._futures: dict[Key, list[asyncio.Future[dict[str, Any]]]] = {}
        self._progress: dict[Key, list[ProgressFn]] = {}
        self._sending: set[asyncio.Task[None]] = set()

    def register(self, user_id: str, job_id: str, on_progress: ProgressFn | None = None) -> asyncio.Future[dict[str, Any]]:
        key = (user_id, job_id)
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._futures.setdefault(key, []).append(fut)
        if on_progress is not None:
            self._progress.setdefault(key, []).append(on_progress)
        return fut

    def release(self, user_id: str, job_id: str, fut: asyncio.Future[dict[str, Any]], on_progress: ProgressFn | None = None) -> None:
        """Forget one waiter (after its reply, timeout or cancellation)."""
        key = (user_id, job_id)
        futs = self._futures.get(key, [])
        if fut in futs:
            futs.remove(fut)
        if not futs:
            self._futures.pop(key, None)
        fns = self._progress.get(key, [])
        if on_progress in fns:
            fns.remove(on_progress)
        if not fns:
            self._progress.pop(key, None)

    def waited_on(self) -> list[Key]:
        """Every (user_id, job_id) somebody waits for here."""
        return list(self._futures)

    def waiting_on(self, user_id: str, job_id: str) -> bool:
        """Whether anyone here waits for this job."""
        return bool(self._futures.get((user_id, job_id)))

    def deliver(self, user_id: str, job_id: str, outcome: dict[str, Any]) -> int:
        """Resolve every waiter of this job; returns how many were waiting."""
        futs = self._futures.pop((user_id, job_id), [])
        self._progress.pop((user_id, job_id), None)
        for fut in futs:
            if not fut.done():
                fut.set_result(outcome)
        return len(futs)

    def progress_soon(self, user_id: str, job_id: str, fraction: float | None, message: str | None,
                      level: str | None = None) -> None:
        """`progress`, without waiting for it (a peer's poll must not wait on callers' streams)."""
        if self._progress.get((user_id, job_id)):
            task = asyncio.ensure_future(self.progress(user_id, job_id, fraction, message, level))
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)

    async def progress(self, user_id: str, job_id: str, fraction: float | None, message: str | None,
                       level: str | None = None) -> None:
        for fn in list(self._progress.get((user_id, job_id), [])):
            try:
                await fn(fraction, message, level)
            except Exception:  # noqa: BLE001 - a caller that went away must not break the peer's reply
                pass

    def waiting(self) -> int:
        return sum(len(v) for v in self._futures.values())


class RisingProgress:
    """A caller's progress reports, made to rise with each one as MCP requires: a handler's own
    fraction when it moves forward, else a small step towards 1 (a heartbeat, a message alone)."""

    def __init__(self, send: Callable[[float, float | None, str | None], Awaitable[None]]) -> None:
        self._send, self.last = send, 0.0

    async def __call__(self, fraction: float | None, message: str | None) -> None:
        rising = fraction is not None and fraction > self.last
        value = fraction if rising else self.last + (1.0 - self.last) * 0.01
        if value <= self.last:  # at 1.0 already (the handler said it is done): nothing can rise further
            return
        self.last = value  # type: ignore[assignment]
        await self._send(value, 1.0, message)
