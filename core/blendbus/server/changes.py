"""Change notifications: a peer's scene changed, so the resources that show it changed too.

A peer reports depsgraph updates (debounced, naming the objects) with `blender_scene_changed`; the
Hub puts a `scene_changed` event on the user's bus feed, which lives in the backend, so every
replica sees it. Here, one watcher per user with listeners on this replica turns those events into
resource updates:

- 2026-07-28: `subscriptions/listen` streams get `notifications/resources/updated` for the URIs
  they asked for, and `notifications/tasks` (the DetailedTask) when a task in their `taskIds` ends.
  Each stream is the user's own: nobody hears another user's scene or tasks. (The SDK's
  ListenHandler serves one bus for every caller and knows no `taskIds`, hence this one.)
- 2025-11-25: sessions that sent `resources/subscribe` get the same notification on their stream.

Which URIs a scene change touches: every plain resource the plugins register (blender://scene/info,
blender://scene/objects, ...), and each template with one variable (blender://scene/object/{name})
filled with each changed object's name.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import quote

import mcp_types as types
from mcp.shared.exceptions import MCPError
from mcp.shared.subscriptions import (
    SUBSCRIPTION_ID_META_KEY,
    ResourceUpdated,
    event_to_notification,
)
from pydantic import ConfigDict

from .. import protocol as p
from .. import tasks
from ..primitives import Resource
from ..dispatch import Hub
from .calls import finished_result
from .sessions import connection_of, session_key

log = logging.getLogger(__name__)
_VARIABLE = re.compile(r"\{[^}]+\}")


def touched_uris(resources: list[Resource], objects: list[str], whole: bool) -> list[str]:
    """The resource URIs a scene change makes stale (`whole`: too many objects changed to name)."""
    uris = [r.uri for r in resources if not r.is_template]
    if not whole:
        for r in resources:
            if r.is_template and len(_VARIABLE.findall(r.uri)) == 1:
                uris += [_VARIABLE.sub(quote(name, safe=""), r.uri) for name in objects]
    return uris


MAX_STREAMS_PER_USER = 64
"""Open `subscriptions/listen` streams one user may hold on one replica."""
MAX_BUFFERED = 1024
"""Notifications a stream may have waiting; a client that stops reading has its stream ended."""
TASK_EVENTS = frozenset({p.JOB_UPDATE, "cancel"})
"""Bus events after which a job's task may have changed status."""


class _TaskParams(types.NotificationParams):
    model_config = ConfigDict(extra="allow", populate_by_name=True)


class TaskNotification(types.Notification[_TaskParams, Literal["notifications/tasks"]]):
    """`notifications/tasks`: a task a listener named in `taskIds` changed; params are its DetailedTask."""


Deliver = Callable[[str, Any], None]
"""A listen stream's intake: ("resource", uri), ("task", job), or (END, None) to end it."""
END = "end"


MAX_URI_BYTES = 2048
"""A subscribed URI is at most this long (a resource URI names a scene, an object: far less)."""


class TooManySubscriptions(ValueError):
    """A session or a user already holds as many `resources/subscribe` entries as it may."""


@dataclass
class _UserFeed:
    streams: set[Deliver] = field(default_factory=set)
    subscribed: dict[str, dict[str, Any]] = field(default_factory=dict)
    """uri -> {session key: the session-era client connection that subscribed to it}."""
    holders: int = 0
    watcher: asyncio.Task[None] | None = None

    def subscriptions(self) -> int:
        return sum(len(sessions) for sessions in self.subscribed.values())


class ChangeFeed:
    """Per-user change notifications on this replica, fed from the backend's bus feed."""

    def __init__(self, hub: Hub, resources: list[Resource]) -> None:
        self.hub, self.resources = hub, resources
        self._users: dict[str, _UserFeed] = {}
        self._sessions: dict[str, tuple[str, set[str]]] = {}
        """session key -> (its user, the URIs it subscribed to): what `session_ended` drops."""

    def _watched(self, user_id: str) -> _UserFeed:
        """The user's feed, with its watcher running."""
        feed = self._users.get(user_id)
        if feed is None:
            feed = self._users[user_id] = _UserFeed()
        if feed.watcher is None or feed.watcher.done():
            feed.watcher = asyncio.ensure_future(self._watch(user_id, feed))
        return feed

    @contextmanager
    def _held(self, user_id: str) -> Iterator[_UserFeed]:
        feed = self._watched(user_id)
        feed.holders += 1
        try:
            yield feed
        finally:
            feed.holders -= 1
            self._release(user_id, feed)

    def _release(self, user_id: str, feed: _UserFeed) -> None:
        if feed.holders <= 0 and not any(feed.subscribed.values()):
            if feed.watcher is not None:
                feed.watcher.cancel()
            self._users.pop(user_id, None)

    async def listen(self, user_id: str, ctx: Any,
                     params: types.SubscriptionsListenRequestParams) -> types.SubscriptionsListenResult:
        """Serve one `subscriptions/listen` stream of `user_id` until the client leaves: the ack first,
        then the notifications it asked for, every frame stamped with the subscription id."""
        if ctx.request_id is None:
            raise MCPError(code=-32600, message="subscriptions/listen needs a request id")
        wanted = params.notifications
        uris = frozenset(wanted.resource_subscriptions or ())
        task_ids = frozenset(str(t) for t in (wanted.model_extra or {}).get("taskIds") or ())
        meta: dict[str, Any] = {SUBSCRIPTION_ID_META_KEY: ctx.request_id}
        honored = types.SubscriptionFilter(
            tools_list_changed=True if wanted.tools_list_changed else None,
            prompts_list_changed=True if wanted.prompts_list_changed else None,
            resources_list_changed=True if wanted.resources_list_changed else None,
            resource_subscriptions=sorted(uris) or None, **({"taskIds": sorted(task_ids)} if task_ids else {}))
        queue: asyncio.Queue[tuple[str, Any] | None] = asyncio.Queue(MAX_BUFFERED)
        ttl_ms = tasks.ttl_ms(self.hub.jobs.max_age_s)

        def deliver(kind: str, item: Any) -> None:
            if kind == END:
                end()
            elif (kind == "resource" and item in uris) or (kind == "task" and item.job_id in task_ids):
                try:
                    queue.put_nowait((kind, item))
                except asyncio.QueueFull:  # the client stopped reading: end its stream
                    end()

        def end() -> None:
            if queue.full():
                queue.get_nowait()
            queue.put_nowait(None)

        with self._held(user_id) as feed:
            if len(feed.streams) >= MAX_STREAMS_PER_USER:
                raise MCPError(code=-32603, message=f"{MAX_STREAMS_PER_USER} listen streams of yours are open here;"
                               " close one first")
            feed.streams.add(deliver)
            try:
                await ctx.session.send_notification(types.SubscriptionsAcknowledgedNotification(
                    params=types.SubscriptionsAcknowledgedNotificationParams(notifications=honored, _meta=meta)),
                    related_request_id=ctx.request_id)
                while (entry := await queue.get()) is not None:
                    kind, item = entry
                    if kind == "resource":
                        note: Any = event_to_notification(ResourceUpdated(uri=item), meta)
                    else:
                        note = TaskNotification(method="notifications/tasks", params=_TaskParams(
                            **tasks.detailed(item, ttl_ms, result=finished_result(item, self.hub.limits)), _meta=meta))
                    await ctx.session.send_notification(note, related_request_id=ctx.request_id)
            finally:
                feed.streams.discard(deliver)
        return types.SubscriptionsListenResult(_meta=meta)

    def close(self) -> None:
        """The server is shutting down: end every listen stream (the client may listen again on
        another replica), and stop following the bus."""
        for feed in self._users.values():
            for deliver in list(feed.streams):
                deliver(END, None)
            if feed.watcher is not None:
                feed.watcher.cancel()

    def subscribe(self, user_id: str, uri: str, session: Any) -> None:
        """A session-era `resources/subscribe`: within `max_subscriptions_per_session` per session and
        `max_subscriptions_per_user` over the user's sessions on this replica (TooManySubscriptions)."""
        connection = connection_of(session)
        key = session_key(connection)
        if len(uri.encode()) > MAX_URI_BYTES:
            raise TooManySubscriptions(f"a subscribed URI is at most {MAX_URI_BYTES} bytes")
        owner, uris = self._sessions.get(key, (user_id, set()))
        if uri in uris:
            return
        lim, feed = self.hub.limits, self._watched(user_id)
        if len(uris) >= lim.max_subscriptions_per_session:
            raise TooManySubscriptions(f"this session already subscribes to {len(uris)} resources, the most"
                                       " allowed; unsubscribe from one first")
        if feed.subscriptions() >= lim.max_subscriptions_per_user:
            raise TooManySubscriptions(f"your sessions already hold {lim.max_subscriptions_per_user} subscriptions"
                                       " on this server, the most allowed; unsubscribe first")
        uris.add(uri)
        self._sessions[key] = (owner, uris)
        feed.subscribed.setdefault(uri, {})[key] = connection

    def subscriptions(self, user_id: str) -> int:
        """How many `resources/subscribe` entries the user's sessions hold on this replica."""
        feed = self._users.get(user_id)
        return feed.subscriptions() if feed is not None else 0

    def unsubscribe(self, user_id: str, uri: str, session: Any) -> None:
        self._forget(session_key(connection_of(session)), {uri})

    def session_ended(self, session_id: str) -> None:
        """A session-era session ended (DELETE, idle, crash): its subscriptions go with it."""
        self._forget(session_id, None)

    def _forget(self, key: str, uris: set[str] | None) -> None:
        """Drop `uris` (None: all) of one session's subscriptions."""
        user_id, held = self._sessions.get(key, ("", set()))
        feed = self._users.get(user_id)
        for uri in list(held if uris is None else held & uris):
            held.discard(uri)
            if feed is not None:
                sessions = feed.subscribed.get(uri, {})
                sessions.pop(key, None)
                if not sessions:
                    feed.subscribed.pop(uri, None)
        if not held:
            self._sessions.pop(key, None)
        if feed is not None:
            self._release(user_id, feed)

    async def _watch(self, user_id: str, feed: _UserFeed) -> None:
        """Follow the user's bus feed from now on: scene changes become resource updates, a job's
        end becomes its task's notification."""
        _, cursor = await self.hub.peers.events_since(user_id, 1 << 62, 0)
        while not self.hub.closing:
            try:
                events, cursor = await self.hub.peers.events_since(user_id, cursor, 30.0)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - a backend hiccup: try again, never stop listening
                log.warning("change feed of %s: %s", user_id, exc)
                await asyncio.sleep(1.0)
                continue
            for event in events:
                if event.kind == p.SCENE_CHANGED:
                    await self._announce(feed, touched_uris(self.resources, event.data.get("objects", []),
                                                            bool(event.data.get("all"))))
                elif event.kind in TASK_EVENTS and feed.streams:
                    job = await self.hub.jobs.get(user_id, str(event.data.get("job_id")))
                    if job is not None:
                        for deliver in list(feed.streams):
                            deliver("task", job)

    async def _announce(self, feed: _UserFeed, uris: list[str]) -> None:
        for uri in uris:
            for deliver in list(feed.streams):
                deliver("resource", uri)
            for key, connection in list(feed.subscribed.get(uri, {}).items()):
                try:
                    await connection.send_resource_updated(uri)
                except Exception:  # noqa: BLE001 - a client that went away: forget it
                    self._forget(key, None)
