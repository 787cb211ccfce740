"""Change notifications: a peer's scene changed, so the resources that show it changed too.

A peer reports depsgraph updates (debounced, naming the objects) with `blender_scene_changed`; the
Hub puts a `scene_changed` event on the user's bus feed, which lives in the backend, so every
replica sees it. Here, one watcher per user with listeners on this replica turns those events into
resource updates:

- 2026-07-28: `subscriptions/listen` streams (the SDK's `ListenHandler`, one per user, so nobody
  hears another user's scene) get `notifications/resources/updated` for the URIs they asked for;
- 2025-11-25: sessions that sent `resources/subscribe` get the same notification on their stream.

Which URIs a scene change touches: every plain resource the plugins register (blender://scene/info,
blender://scene/objects, ...), and each template with one variable (blender://scene/object/{name})
filled with each changed object's name.
"""

from __future__ import annotations

import asyncio
import logging
import re
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from mcp.server.subscriptions import InMemorySubscriptionBus, ListenHandler, ResourceUpdated

from . import protocol as p
from .command import Resource
from .dispatch import Hub

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


def connection_of(session: Any) -> Any:
    """The client connection behind a request's ServerSession. The SDK builds a ServerSession per
    request and offers no public accessor for its connection, which is what lives as long as the
    client and can send it notifications later (`Connection.send_resource_updated`)."""
    connection = getattr(session, "_connection", None)
    if connection is None or not hasattr(connection, "send_resource_updated"):
        raise RuntimeError("this mcp SDK's ServerSession has no connection: resources/subscribe needs updating")
    return connection


@dataclass
class _UserFeed:
    listen: ListenHandler
    bus: InMemorySubscriptionBus
    subscribed: dict[str, weakref.WeakSet[Any]] = field(default_factory=dict)
    """uri -> session-era client connections that subscribed to it (gone when the client is)."""
    holders: int = 0
    watcher: asyncio.Task[None] | None = None


class ChangeFeed:
    """Per-user change notifications on this replica, fed from the backend's bus feed."""

    def __init__(self, hub: Hub, resources: list[Resource]) -> None:
        self.hub, self.resources = hub, resources
        self._users: dict[str, _UserFeed] = {}

    def _feed(self, user_id: str) -> _UserFeed:
        feed = self._users.get(user_id)
        if feed is None:
            bus = InMemorySubscriptionBus()
            feed = self._users[user_id] = _UserFeed(listen=ListenHandler(bus), bus=bus)
        return feed

    @contextmanager
    def _held(self, user_id: str) -> Iterator[_UserFeed]:
        feed = self._feed(user_id)
        feed.holders += 1
        if feed.watcher is None or feed.watcher.done():
            feed.watcher = asyncio.ensure_future(self._watch(user_id, feed))
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

    async def listen(self, user_id: str, ctx: Any, params: Any) -> Any:
        """Serve one `subscriptions/listen` stream of `user_id` until the client leaves."""
        with self._held(user_id) as feed:
            return await feed.listen(ctx, params)

    def subscribe(self, user_id: str, uri: str, session: Any) -> None:
        """A session-era `resources/subscribe`."""
        feed = self._feed(user_id)
        feed.subscribed.setdefault(uri, weakref.WeakSet()).add(connection_of(session))
        if feed.watcher is None or feed.watcher.done():
            feed.watcher = asyncio.ensure_future(self._watch(user_id, feed))

    def unsubscribe(self, user_id: str, uri: str, session: Any) -> None:
        feed = self._users.get(user_id)
        if feed is not None:
            feed.subscribed.get(uri, weakref.WeakSet()).discard(connection_of(session))
            self._release(user_id, feed)

    async def _watch(self, user_id: str, feed: _UserFeed) -> None:
        """Follow the user's bus feed from now on; turn scene changes into resource updates."""
        _, cursor = await self.hub.peers.events_since(user_id, 1 << 62, 0)
        while True:
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

    async def _announce(self, feed: _UserFeed, uris: list[str]) -> None:
        for uri in uris:
            await feed.bus.publish(ResourceUpdated(uri=uri))
            for connection in list(feed.subscribed.get(uri, ())):
                try:
                    await connection.send_resource_updated(uri)
                except Exception:  # noqa: BLE001 - a client that went away: forget it
                    feed.subscribed[uri].discard(connection)
