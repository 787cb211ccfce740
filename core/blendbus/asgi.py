"""ASGI pieces around the SDK's streamable-HTTP app: how request bodies are read, how often held-open
requests are pinged. Each replaces an SDK behaviour that a benchmark showed costly; each is
guarded, so an SDK without the piece it replaces is simply left as it is."""

from __future__ import annotations

import ctypes
import sys
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from mcp.server.transport_security import RequestBodyLimitMiddleware
from starlette.datastructures import Headers
from starlette.responses import Response

if TYPE_CHECKING:
    from .server import BlendbusServer

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


class _BodyLimit:
    """Reads a request body whole, up to `limit` bytes (HTTP 413 beyond), and hands it on as one
    message. Stands in for the SDK's equivalent, which keeps a second copy of every body until the
    request ends: 64 MiB more at the server's peak while a 64 MiB reply passes through. The body
    grows in one buffer rather than a list of chunks: a large buffer is its own mapping, returned to
    the system when freed, where thousands of small chunks would stay in the process's heap."""

    def __init__(self, app: Callable[..., Any], limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > self.limit:
            await Response("Request body too large", status_code=413)(scope, receive, send)
            return
        buffer = bytearray()
        requested, complete = False, False
        pending: deque[dict[str, Any]] = deque()
        while True:
            message = await receive()
            if message["type"] != "http.request":
                pending.append(message)
                break
            requested = True
            buffer += message.get("body", b"")
            if len(buffer) > self.limit:
                await Response("Request body too large", status_code=413)(scope, receive, send)
                return
            if not message.get("more_body", False):
                complete = True
                break
        large = len(buffer) > LARGE_BODY_BYTES
        if requested:
            pending.appendleft({"type": "http.request", "body": bytes(buffer), "more_body": not complete})
        del buffer

        async def replay() -> dict[str, Any]:
            return pending.popleft() if pending else await receive()

        try:
            await self.app(scope, replay, send)
        finally:
            if large:
                _return_freed_memory()


def _return_freed_memory() -> None:
    """Parsing a large body leaves the heap full of freed blocks that glibc keeps for reuse; without
    this the next large result starts from a higher resident set, and peaks higher."""
    trim = getattr(_LIBC, "malloc_trim", None)
    if trim is not None:
        trim(0)


def hold_bodies_once(server: BlendbusServer, limit: int) -> None:
    """Put `_BodyLimit` where the SDK's body-limit middleware sits in front of its request handler."""
    manager = server.mcp.session_manager
    if isinstance(manager.asgi_app, RequestBodyLimitMiddleware):
        manager.asgi_app = _BodyLimit(manager.asgi_app.app, limit)
