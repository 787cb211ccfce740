"""Requests a caller holds open: long waits (`blender_get_job(wait_s)`, `blender_watch_bus`,
`tasks/result`), status-page streams and listen streams.

Each one costs the server a task, a connection and, on Redis, a re-read every few seconds. So each
user may hold only so many at once (per kind, on this replica), each is bounded in time by its own
limit, and a wait with no side effect ends as soon as its caller leaves: when the HTTP client that
asked hangs up, nobody could read the answer. (A dispatched job is different: leaving does not
cancel it, as the MCP specification asks; only `notifications/cancelled` does.)
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

T = TypeVar("T")

GONE_KEY = "blendbus.gone"
"""ASGI scope key: an asyncio.Event set when the HTTP client of this request disconnects (asgi.py)."""


class TooManyWaits(RuntimeError):
    """The caller already holds as many waits of this kind as it may; the message says how many."""


class CallerGone(Exception):
    """The client that asked hung up before the wait ended: there is nobody to answer."""


class Waits:
    """How many waits of each kind each user holds open on this replica."""

    def __init__(self) -> None:
        self._held: Counter[tuple[str, str]] = Counter()

    def held(self, user_id: str, kind: str) -> int:
        return self._held[(user_id, kind)]

    def take(self, user_id: str, kind: str, limit: int) -> Callable[[], None]:
        """Count one more `kind` wait of `user_id` (TooManyWaits at `limit`); returns its release."""
        key = (user_id, kind)
        if self._held[key] >= limit:
            raise TooManyWaits(f"{limit} {kind} of yours are already open on this server; close one, or wait"
                               " for one to end")
        self._held[key] += 1
        released = False

        def release() -> None:
            nonlocal released
            if not released:
                released = True
                self._held[key] -= 1
                if self._held[key] <= 0:
                    del self._held[key]

        return release

    @contextmanager
    def hold(self, user_id: str, kind: str, limit: int) -> Iterator[None]:
        """`take` for the duration of a block."""
        release = self.take(user_id, kind, limit)
        try:
            yield
        finally:
            release()


def gone_event(ctx: Any) -> asyncio.Event | None:
    """The request's "client left" event, when it came over HTTP (None on stdio and in memory)."""
    request = getattr(ctx, "request", None)
    scope = getattr(request, "scope", None)
    return scope.get(GONE_KEY) if isinstance(scope, dict) else None


async def while_present(gone: asyncio.Event | None, waiting: Awaitable[T]) -> T:
    """`waiting`'s outcome, unless the request's client leaves first (`gone`, from `gone_event`):
    then it is cancelled and CallerGone raised. Only for waits that change nothing: cancelling them
    loses no work."""
    task = asyncio.ensure_future(waiting)
    if gone is None:
        return await task
    left = asyncio.ensure_future(gone.wait())
    try:
        await asyncio.wait({task, left}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        left.cancel()
        if not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    if task.cancelled() or not task.done():
        raise CallerGone("the client that asked has left")
    return task.result()
