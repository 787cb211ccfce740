"""The status page: what a bus is doing, for the people who run it.

`GET /` serves one self-contained HTML page (status.html: no build step, no CDN, no framework);
`GET /status/api` answers the JSON it shows, and `GET /status/api/events` streams it again (server-sent
events) each time the bus changes: the caller's peers and their newest jobs, with a
thumbnail for image results. The API sits behind the same bearer auth as /mcp, so with `--tokens`
each token sees only its own user's bus; without tokens (loopback only) it shows user `local`.
An operator token (`blendbus token new NAME --role operator`) sees every user's bus, one at a time
(`?user=`), and the list of users; it can call no tool.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import OrderedDict
from dataclasses import dataclass, field
from collections.abc import AsyncIterator, Awaitable, Callable
from importlib import resources
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from mcp.server.transport_security import TransportSecurityMiddleware, TransportSecuritySettings

from . import protocol as p
from .auth import OPERATOR, ROLES, ROLES_SCOPE_KEY, USER_SCOPE_KEY
from .backends.snapshots import Job
from .dispatch import Hub
from .waits import TooManyWaits, Waits

log = logging.getLogger(__name__)
API_PATH = "/status/api"
EVENTS_PATH = API_PATH + "/events"
"""The same JSON as server-sent events, each time the bus changes (under API_PATH: the same auth)."""
KEEPALIVE_S = 15.0
SLOW_READER_S = 30.0
"""A stream whose reader has not taken a snapshot for this long is ended."""
SETTLE_S = 0.2
JOBS_SHOWN = 50
THUMBNAILS = 12
"""Completed jobs looked at for a thumbnail: the newest only."""
THUMBNAIL_SOURCE_MAX_BYTES = 4 * 1024 * 1024
"""A result larger than this is not read for a thumbnail (a page refresh must stay cheap)."""
LLM = ROLES[0]
STREAMS = "status streams"
"""The kind of wait a live status stream is (waits.py): capped per user by `max_status_streams_per_user`."""
PAGE_POLICY = ("default-src 'self'; img-src 'self' data:; style-src 'unsafe-inline'; script-src 'unsafe-inline';"
               " frame-ancestors 'none'")
"""The page's Content-Security-Policy: nothing from elsewhere, and no other page may frame it (clickjacking)."""


def _thumbnail(job: Job | None) -> str | None:
    if job is None or job.result_data is None or len(job.result_data) > THUMBNAIL_SOURCE_MAX_BYTES:
        return None
    result = job.result
    images = [b for b in p.content_blocks(result) if b["type"] == "image"] if p.content_problem(result) is None else []
    if not images:
        return None
    image = images[0]
    return f"data:{image.get('mime_type', 'image/png')};base64,{image['data']}"


class Thumbnails:
    """Thumbnails of completed jobs, each result read once: a completed job's result never changes,
    and a page refreshing every 2 s must not read large results again and again."""

    def __init__(self, hub: Hub, keep: int = 512) -> None:
        self.hub, self.keep = hub, keep
        self._seen: OrderedDict[tuple[str, str], str | None] = OrderedDict()

    async def of(self, user_id: str, job_id: str) -> str | None:
        key = (user_id, job_id)
        if key not in self._seen:
            meta = await self.hub.jobs.get(user_id, job_id, result=False)  # a large result is not read at all
            small = meta is not None and (meta.result_bytes or 0) <= THUMBNAIL_SOURCE_MAX_BYTES
            self._seen[key] = _thumbnail(await self.hub.jobs.get(user_id, job_id) if small else None)
            while len(self._seen) > self.keep:
                self._seen.popitem(last=False)
        return self._seen[key]


async def snapshot(hub: Hub, user_id: str, thumbnails: Thumbnails) -> dict[str, Any]:
    """The user's peers and newest jobs, as the page shows them; the newest completed jobs get a
    thumbnail when their result holds an image."""
    shown = []
    completed = 0
    for job in await hub.jobs.recent(user_id, JOBS_SHOWN):
        thumbnail = None
        if job.status == p.COMPLETED and completed < THUMBNAILS:
            completed += 1
            thumbnail = await thumbnails.of(user_id, job.job_id)
        shown.append({"job_id": job.job_id, "command": job.command, "status": job.status,
                      "target_uuid": job.target_uuid, "created": job.created, "updated": job.updated,
                      "duration_s": round(job.updated - job.created, 3), "error": job.error[:300],
                      "thumbnail": thumbnail})
    return {"user": user_id, "backend": hub.backend.name, "peers": await hub.list_peers(user_id), "jobs": shown}


async def every_user(hub: Hub) -> list[str]:
    """The users an operator can look at: those with jobs kept or a peer registered."""
    return sorted(set(await hub.jobs.users()) | set(await hub.peers.users()))


class _LiveResponse(StreamingResponse):
    """Server-sent events to a reader that must keep up: a snapshot the client has not taken within
    SLOW_READER_S ends its stream (it would otherwise hold its place, and buffers, for as long as it
    likes). uvicorn then closes the connection, saying the response was not completed."""

    async def stream_response(self, send: Any) -> None:
        async def bounded(message: Any) -> None:
            async with asyncio.timeout(SLOW_READER_S):
                await send(message)

        try:
            await super().stream_response(bounded)
        except TimeoutError:
            log.info("dropped a status stream whose reader took nothing for %gs", SLOW_READER_S)


class _Reader:
    """One open stream: the newest snapshot it has not sent yet, or dropped for being too slow."""

    def __init__(self) -> None:
        self.latest: str | None = None
        self.dropped = False
        self.ready = asyncio.Event()

    def offer(self, text: str | None) -> None:
        """A new snapshot (None: the stream ends)."""
        if text is not None and self.latest is not None:  # the last one is still unsent: too slow a reader
            self.dropped = True
        self.latest = text
        self.ready.set()


@dataclass
class _View:
    """One bus shown one way, and the streams following it."""

    readers: set[_Reader] = field(default_factory=set)
    last: str | None = None
    producer: asyncio.Task[None] | None = None


class StatusStreams:
    """The live streams of the status page. Every stream showing the same bus the same way shares one
    producer: one snapshot per change, encoded once, however many streams read it. Each user may hold
    `max_status_streams_per_user` streams on this replica, and a reader that falls a whole snapshot
    behind is dropped (the page reconnects)."""

    def __init__(self, hub: Hub, body: Callable[[str, bool], Awaitable[dict[str, Any]]], waits: Waits) -> None:
        self.hub, self.body, self.waits = hub, body, waits
        self._views: dict[tuple[str, bool], _View] = {}

    def open(self, caller: str, user: str, operator: bool) -> AsyncIterator[str]:
        """A stream of `user`'s bus for one reader, counted against `caller`'s cap: TooManyWaits at once
        when the caller is at it (a race past this check ends the stream at its start instead)."""
        limit = self.hub.limits.max_status_streams_per_user
        if self.waits.held(caller, STREAMS) >= limit:
            self.waits.take(caller, STREAMS, limit)  # raises, with the message
        return self._follow(caller, (user, operator))

    async def _follow(self, caller: str, key: tuple[str, bool]) -> AsyncIterator[str]:
        try:  # counted from the stream's start: a response cancelled before it starts holds nothing
            release = self.waits.take(caller, STREAMS, self.hub.limits.max_status_streams_per_user)
        except TooManyWaits:
            return
        reader, view = _Reader(), self._views.setdefault(key, _View())
        view.readers.add(reader)
        if view.last is not None:
            reader.offer(view.last)
        if view.producer is None:
            view.producer = asyncio.ensure_future(self._produce(key, view))
        try:
            while True:
                await reader.ready.wait()
                reader.ready.clear()
                if reader.dropped or reader.latest is None:
                    return
                text, reader.latest = reader.latest, None
                yield text
        finally:
            release()
            view.readers.discard(reader)
            if not view.readers and self._views.get(key) is view:
                del self._views[key]
                if view.producer is not None:
                    view.producer.cancel()

    async def _produce(self, key: tuple[str, bool], view: _View) -> None:
        """The snapshot now, then again after each burst of bus events (and every KEEPALIVE_S, for
        "last seen" and for proxies that close quiet streams), until the server shuts down."""
        user, operator = key
        try:
            now = await self.body(user, operator)
            _, cursor = await self.hub.peers.events_since(now["user"], 1 << 62, 0)
            while True:
                view.last = f"data: {json.dumps(now)}\n\n"
                for reader in list(view.readers):
                    reader.offer(view.last)
                events, cursor = await self.hub.peers.events_since(now["user"], cursor, KEEPALIVE_S)
                if self.hub.closing:  # a server shutting down ends the streams: the page reconnects
                    break
                if events:
                    await asyncio.sleep(SETTLE_S)  # a burst (dispatch, running, done) is one update
                now = await self.body(user, operator)
        finally:  # ended, or failed: its readers end too
            if self._views.get(key) is view:
                del self._views[key]
            for reader in list(view.readers):
                reader.offer(None)


def status_routes(hub: Hub, security: TransportSecuritySettings, waits: Waits) -> list[Route]:
    """`/`, the API and its live stream, with the same Host/Origin checks as /mcp (a rebinding page
    cannot read them)."""
    page = resources.files(__package__).joinpath("status.html").read_text(encoding="utf-8")
    guard = TransportSecurityMiddleware(security)
    thumbnails = Thumbnails(hub)

    async def index(request: Request) -> Response:
        if (refused := await guard.validate_request(request)) is not None:
            return refused
        return HTMLResponse(page, headers={"Cache-Control": "no-store", "X-Frame-Options": "DENY",
                                           "Content-Security-Policy": PAGE_POLICY})

    async def shown(request: Request) -> tuple[str, bool] | Response:
        """Whose bus the caller sees (and whether as an operator), or the refusal."""
        if (refused := await guard.validate_request(request)) is not None:
            return refused
        roles = request.scope.get(ROLES_SCOPE_KEY, frozenset(ROLES))
        own, asked = request.scope.get(USER_SCOPE_KEY, "local"), request.query_params.get("user")
        if OPERATOR in roles:
            return asked or "", True
        if LLM not in roles:
            return JSONResponse({"error": f"the status page needs a token with the {LLM} or {OPERATOR} role"},
                                status_code=403)
        if asked not in (None, own):
            return JSONResponse({"error": f"only an {OPERATOR} token sees another user's bus"}, status_code=403)
        return own, False

    async def body(user: str, operator: bool) -> dict[str, Any]:
        if not operator:
            return await snapshot(hub, user, thumbnails)
        users = await every_user(hub)
        return {**await snapshot(hub, user or (users[0] if users else "local"), thumbnails), "operator": True,
                "users": users}

    streams = StatusStreams(hub, body, waits)

    async def api(request: Request) -> Response:
        decided = await shown(request)
        if isinstance(decided, Response):
            return decided
        return JSONResponse(await body(*decided), headers={"Cache-Control": "no-store"})

    async def events(request: Request) -> Response:
        decided = await shown(request)
        if isinstance(decided, Response):
            return decided
        try:
            stream = streams.open(request.scope.get(USER_SCOPE_KEY, "local"), *decided)
        except TooManyWaits as exc:
            return JSONResponse({"error": f"{exc} (a status page holds one)"}, status_code=429)
        return _LiveResponse(stream, media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    return [Route("/", index), Route(API_PATH, api), Route(EVENTS_PATH, events)]
