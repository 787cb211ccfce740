"""ASGI pieces around the SDK's streamable-HTTP app: how request bodies are read and bounded (size per
token role, pace), how often held-open requests are pinged, how many sessions a user may hold.
Each replaces or wraps an SDK behaviour that a benchmark showed costly or an attack showed open;
each names the SDK piece it touches, so an SDK upgrade has one place to check."""

from __future__ import annotations

import asyncio
import ctypes
import logging
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mcp.server.transport_security import RequestBodyLimitMiddleware
from starlette.datastructures import Headers
from starlette.responses import Response

from .auth import ROLES_SCOPE_KEY, USER_SCOPE_KEY
from .resumption import RETRY_MS, SessionEvents
from .waits import GONE_KEY

if TYPE_CHECKING:
    from .server import BlendbusServer

log = logging.getLogger(__name__)
LARGE_BODY_BYTES = 8 * 1024 * 1024
"""After a request this large, freed memory is handed back to the system (see _return_freed_memory)."""
_LIBC = ctypes.CDLL(None) if sys.platform.startswith("linux") else None


KEEPALIVE_PING_S = 45.0
"""Keep-alive ping interval on a request held open, such as a peer's long poll (the SDK's is 15 s).
Each ping wakes server and peer: at 15 s, 500 idle peers kept the server 1.5% busy; at 45 s,
under 0.5%. Still below the 60 s idle-read timeout common in proxies."""


def space_keepalive_pings() -> None:
    # The SDK has no setting for this; its module constant is read at each request.
    from mcp.server import _streamable_http_modern as modern

    if isinstance(getattr(modern, "_SSE_PING_INTERVAL", None), float):
        modern._SSE_PING_INTERVAL = KEEPALIVE_PING_S


@dataclass(frozen=True)
class BodyLimits:
    """How large, and how slow, a request body may be."""

    llm_bytes: int
    """For a token without the peer role: LLM tool arguments are capped well below peer results."""
    peer_bytes: int
    """For a token with the peer role: a reply carries a result up to the result cap."""
    idle_s: float = 10.0
    """Longest pause between two pieces of a body."""
    min_rate: float = 64 * 1024
    """Bytes per second a body must average once `grace_s` has passed."""
    grace_s: float = 10.0


class _BodyLimit:
    """Reads a request body whole, within `BodyLimits` (HTTP 413 when too large, 408 when too slow),
    and then hands on the messages it read, as they came; tells the request's waits when its client
    disconnects (`GONE_KEY`). Stands in for the SDK's equivalent, which keeps a second copy of every
    body until the request ends: 64 MiB more at the server's peak while a 64 MiB reply passes through.
    The body is joined once, by whoever reads it (Starlette's `Request.body`); gathered here into one
    buffer, a 64 MiB body was copied twice more (about 90 ms). The freed chunks of a large body are
    handed back to the system after the request (`_return_freed_memory`)."""

    def __init__(self, app: Callable[..., Any], limits: BodyLimits) -> None:
        self.app, self.limits = app, limits

    async def __call__(self, scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        lim = self.limits
        limit = lim.peer_bytes if "peer" in scope.get(ROLES_SCOPE_KEY, ("peer",)) else lim.llm_bytes
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            await _too_large(limit)(scope, receive, send)
            return
        received, requested, complete = 0, False, False
        pending: deque[dict[str, Any]] = deque()
        started = time.monotonic()
        while True:
            # The next piece must come within idle_s, and the body must keep up min_rate after grace_s.
            allowed = min(lim.idle_s, started + lim.grace_s + received / lim.min_rate - time.monotonic())
            try:
                async with asyncio.timeout(max(allowed, 0.001)):  # no task per piece, unlike wait_for
                    message = await receive()
            except TimeoutError:
                log.info("closed a request whose body stalled after %d bytes", received)
                await Response("Request body too slow", status_code=408, headers={"connection": "close"})(
                    scope, receive, send)
                return
            if message["type"] == "http.disconnect":
                if not complete and requested:
                    log.info("a client disconnected after sending %d bytes of its request", received)
                    return
                pending.append(message)
                break
            if message["type"] != "http.request":
                pending.append(message)
                break
            requested = True
            pending.append(message)
            received += len(message.get("body", b""))
            if received > limit:
                await _too_large(limit)(scope, receive, send)
                return
            if not message.get("more_body", False):
                complete = True
                break
        large = received > LARGE_BODY_BYTES

        gone = scope[GONE_KEY] = asyncio.Event()  # long waits end when their client leaves (waits.py)

        async def replay() -> dict[str, Any]:
            message = pending.popleft() if pending else await receive()
            if message["type"] == "http.disconnect":
                gone.set()
            return message

        try:
            await self.app(scope, replay, send)
        finally:
            if large:
                _return_freed_memory()


def _too_large(limit: int) -> Response:
    return Response(f"Request body too large (the limit for this token is {limit} bytes)", status_code=413)


def _return_freed_memory() -> None:
    """Parsing a large body leaves the heap full of freed blocks that glibc keeps for reuse; without
    this the next large result starts from a higher resident set, and peaks higher."""
    trim = getattr(_LIBC, "malloc_trim", None)
    if trim is not None:
        trim(0)


def bounded(app: Callable[..., Any], limits: BodyLimits) -> Callable[..., Any]:
    """`app` with its request bodies read whole within `limits` first, as the MCP endpoint's are."""
    return _BodyLimit(app, limits)


def hold_bodies_once(server: BlendbusServer, limits: BodyLimits) -> None:
    """Put `_BodyLimit` where the SDK's body-limit middleware sits in front of its request handler."""
    manager = server.mcp.session_manager
    if isinstance(manager.asgi_app, RequestBodyLimitMiddleware):
        manager.asgi_app = _BodyLimit(manager.asgi_app.app, limits)


def follow_sessions(server: BlendbusServer, per_user: int) -> None:
    """Cap the session-era (2025-11-25) sessions each user may hold open, so one user cannot use up the
    SDK's server-wide session limit and lock everyone else out; and tell the server when a session
    ends, so what it held (subscriptions) goes with it. The SDK admits and discards sessions in two
    methods; they are wrapped to count sessions by owner (the `client_id` BearerAuth gives the
    request's user). At the cap, the SDK answers 503 as it does at its own limit."""
    manager = server.mcp.session_manager
    admit, discard = getattr(manager, "_admit_session", None), getattr(manager, "_discard_session", None)
    if admit is None or discard is None:
        raise RuntimeError("this mcp SDK admits sessions differently; blendbus cannot cap them per user")
    owners: dict[str, str] = {}
    counts: dict[str, int] = {}

    def admit_counted(requestor: Any) -> Any:
        user = (requestor or {}).get("client_id") or ""
        if counts.get(user, 0) >= per_user:
            log.warning("refusing a new session for user %r: %d sessions of theirs are open", user, per_user)
            return None
        transport = admit(requestor)
        if transport is not None:
            resumable(transport)
            owners[transport.mcp_session_id] = user
            counts[user] = counts.get(user, 0) + 1
        return transport

    async def discard_counted(session_id: str, transport: Any) -> None:
        user = owners.pop(session_id, None)
        if user is not None:
            counts[user] -= 1
            if not counts[user]:
                del counts[user]
        server.session_ended(session_id)
        await discard(session_id, transport)

    manager._admit_session = admit_counted
    manager._discard_session = discard_counted


def resumable(transport: Any) -> None:
    """Give a new session's transport its own event store (resumption.py), so its POST streams are primed
    and a broken one resumes. The SDK's manager hands every session one shared store, keyed by request
    id, where one client's `Last-Event-ID` could replay another's events; each session gets its own."""
    if not hasattr(transport, "_event_store") or not hasattr(transport, "_retry_interval"):
        raise RuntimeError("this mcp SDK keeps a transport's event store differently; blendbus cannot resume streams")
    transport._event_store = SessionEvents()
    transport._retry_interval = RETRY_MS


class PerUserRequests:
    """ASGI middleware, behind authentication: at most `limit` requests of one user in flight at once
    (HTTP 429 beyond). Long polls, waits and streams are capped by kind elsewhere; this bounds them all
    together, so that behind a proxy, where every user shares the proxy's address, no user can take
    every connection the server has."""

    def __init__(self, app: Callable[..., Any], limit: int) -> None:
        self.app, self.limit = app, limit
        self.open: dict[str, int] = {}

    async def __call__(self, scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
        user = scope.get(USER_SCOPE_KEY)
        if scope["type"] != "http" or user is None:
            await self.app(scope, receive, send)
            return
        if self.open.get(user, 0) >= self.limit:
            await Response(f"{self.limit} requests of yours are already in flight on this server; retry when some"
                           " end", status_code=429, headers={"retry-after": "1"})(scope, receive, send)
            return
        self.open[user] = self.open.get(user, 0) + 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.open[user] -= 1
            if not self.open[user]:
                del self.open[user]
