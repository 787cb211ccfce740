"""A broken SSE stream resumes where it broke (MCP resumability, 2025-11-25).

Each POST stream opens with a priming event (an id and no data) and a `retry` hint; every event on
it gets an id. A client whose stream broke (a proxy's timeout, a network change) reconnects with
`Last-Event-ID` after `retry` and is sent what it missed, the answer included, instead of waiting
for an answer that already went out on the dead stream.

The events are kept per session, in the process that serves it (a session lives on one replica),
so one client's events can only ever be replayed to that client. What is kept is bounded: the last
KEPT_STREAMS streams of a session, each for KEPT_S after its last event, KEPT_BYTES of them in all
(the oldest go first), and answers up to KEPT_ANSWER_BYTES (a page of a result and a picture or
two). A larger answer is replayed as an error that says how to get it.
"""

from __future__ import annotations

import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from mcp.server.streamable_http import EventCallback, EventId, EventMessage, EventStore, StreamId
from mcp_types import ErrorData, JSONRPCError, JSONRPCMessage, JSONRPCResponse

from .encoding import encoded_size

RETRY_MS = 2000
"""How long a client waits before it reconnects a broken stream (the SSE `retry` field)."""
KEPT_S = 120.0
"""How long a stream's events are kept after its last one."""
KEPT_STREAMS = 32
"""Streams one session keeps at most (the newest)."""
KEPT_ANSWER_BYTES = 2 * 1024 * 1024
"""An answer larger than this is not kept whole: its replay says how to fetch it."""
KEPT_BYTES = 4 * 1024 * 1024
"""What one session keeps in all, about: older streams go first (never the one being written)."""
EVENT_BYTES = 512
"""What a kept event other than an answer is counted as (a notification, a priming event)."""
NOT_KEPT = -32000


@dataclass
class _Stream:
    events: list[tuple[EventId, JSONRPCMessage | None]] = field(default_factory=list)
    last: float = field(default_factory=time.monotonic)
    answered: bool = False
    size: int = 0


class SessionEvents(EventStore):
    """One session's recent stream events (the SDK's EventStore, given to that session's transport)."""

    def __init__(self) -> None:
        self._streams: OrderedDict[StreamId, _Stream] = OrderedDict()
        self._where: dict[EventId, StreamId] = {}
        self._size = 0

    async def store_event(self, stream_id: StreamId, message: JSONRPCMessage | None) -> EventId:
        now = time.monotonic()
        self._forget(lambda s: now - s.last > KEPT_S)
        stream = self._streams.get(stream_id)
        if stream is None or (message is None and stream.answered):  # a request id used again: a new stream
            self._drop(stream_id)
            stream = self._streams[stream_id] = _Stream()
        self._streams.move_to_end(stream_id)
        while len(self._streams) > KEPT_STREAMS:
            self._drop(next(iter(self._streams)))
        size = EVENT_BYTES
        if isinstance(message, JSONRPCResponse | JSONRPCError):
            stream.answered = True
            if isinstance(message, JSONRPCResponse):
                size = encoded_size(message.result, KEPT_ANSWER_BYTES)
            if size > KEPT_ANSWER_BYTES:
                size = EVENT_BYTES
                message = JSONRPCError(jsonrpc="2.0", id=message.id, error=ErrorData(code=NOT_KEPT, message=(
                    f"the answer was sent while this stream was broken, and at over {KEPT_ANSWER_BYTES} bytes"
                    " it was not kept to send again: a Blender tool's result is its job's (tasks/list lists"
                    " your recent jobs; blender_get_job(job_id) fetches one)")))
        event_id = secrets.token_hex(12)
        stream.events.append((event_id, message))
        stream.last, stream.size, self._size = now, stream.size + size, self._size + size
        while self._size > KEPT_BYTES and next(iter(self._streams)) != stream_id:
            self._drop(next(iter(self._streams)))
        self._where[event_id] = stream_id
        return event_id

    async def replay_events_after(self, last_event_id: EventId, send_callback: EventCallback) -> StreamId | None:
        stream_id = self._where.get(last_event_id)
        if stream_id is None:
            return None
        missed = False
        for event_id, message in list(self._streams[stream_id].events):
            if missed and message is not None:
                await send_callback(EventMessage(message, event_id))
            missed = missed or event_id == last_event_id
        return stream_id

    def _forget(self, stale: Callable[[_Stream], bool]) -> None:
        for stream_id in [sid for sid, s in self._streams.items() if stale(s)]:
            self._drop(stream_id)

    def _drop(self, stream_id: StreamId) -> None:
        stream = self._streams.pop(stream_id, None)
        if stream is None:
            return
        self._size -= stream.size
        for event_id, _ in stream.events:
            self._where.pop(event_id, None)
