"""A job's log lines reach the client that called it, as MCP log messages.

A handler on a peer writes `job.log(level, message)` (and Python warnings raised while it runs are
written for it); the line travels as a running update with a `level` (protocol.LEVEL_FIELD), over
the same path as progress, to whichever replica holds the caller, and goes out as
`notifications/message` (logger "blender") on the call's own stream.

Which lines a client sees is its choice. A 2025-11-25 client sets a level for its whole session with
`logging/setLevel` (until it does, `DEFAULT_LEVEL`). A 2026-07-28 client asks per request, in the
request's `_meta`, and the SDK sends it only what it asked for (`ServerSession.send_log_message`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import mcp_types as types
from mcp.server.connection import allowed_log_levels
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from .. import protocol as p
from ..waiter import RisingProgress
from .sessions import connection_of, session_key

LOGGER = "blender"
"""The `logger` of every log message a job writes."""
DEFAULT_LEVEL = "info"
"""What a session-era client sees before it calls `logging/setLevel`: debug lines are opt-in."""
RANK = {level: rank for rank, level in enumerate(p.LOG_LEVELS)}

LogFn = Callable[[str, str], Awaitable[None]]


class ClientLevels:
    """The level each session-era client chose with `logging/setLevel`, kept for its session."""

    def __init__(self) -> None:
        self._levels: dict[str, str] = {}

    async def set_level(self, ctx: Any, params: types.SetLevelRequestParams) -> types.EmptyResult:
        """The `logging/setLevel` handler: this client's level from now on, for its whole session."""
        self._levels[session_key(connection_of(ctx.session))] = params.level
        return types.EmptyResult()

    def level_of(self, ctx: Any) -> str:
        """The level this request's client set (a 2026-07-28 client never sets one: the lowest)."""
        if ctx.protocol_version in MODERN_PROTOCOL_VERSIONS:
            return p.LOG_LEVELS[0]
        return self._levels.get(session_key(connection_of(ctx.session)), DEFAULT_LEVEL)

    def session_ended(self, session_id: str) -> None:
        self._levels.pop(session_id, None)

    def sender(self, ctx: Any) -> LogFn:
        """Sends a job's log line on this request's own stream, if its client wants lines of that level:
        for a 2026-07-28 request, what its `_meta` opted in to; for a session-era one, its session's level.
        (Built here rather than with the SDK's deprecated `send_log_message`, which warns at every line.)"""
        allowed = allowed_log_levels(ctx.protocol_version, ctx.meta)

        async def send(level: str, message: str) -> None:
            if level in allowed and RANK[level] >= RANK[self.level_of(ctx)]:
                await ctx.session.send_notification(types.LoggingMessageNotification(
                    params=types.LoggingMessageNotificationParams(level=level, data=message, logger=LOGGER)),
                    related_request_id=ctx.request_id)

        return send


class CallerNews:
    """What a waiting caller hears of its job (a waiter.ProgressFn): progress as MCP progress that
    rises, log lines as MCP log messages, questions put to its user (questions.py)."""

    def __init__(self, progress: RisingProgress, log: LogFn, ask: Callable[[str], Awaitable[None]] | None = None) -> None:
        self.progress, self.log, self.ask = progress, log, ask

    async def __call__(self, fraction: float | None, message: str | None, level: str | None = None) -> None:
        if level is None:
            await self.progress(fraction, message)
        elif level == p.ASK_NOTE:
            if self.ask is not None:
                await self.ask(message or "{}")
        else:
            await self.log(level, message or "")
