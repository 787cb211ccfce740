"""A broken SSE stream resumes (MCP resumability, 2025-11-25): a session's POST streams open with a
priming event and a retry hint, and a client that reconnects with Last-Event-ID gets what it
missed, the answer included; never another session's events. Real HTTP, the Python test peer."""

from __future__ import annotations

import json

import httpx2
import mcp_types as types
import pytest

from blendbus import protocol as p
from blendbus.client import connect
from blendbus.resumption import KEPT_ANSWER_BYTES, KEPT_BYTES, KEPT_STREAMS, NOT_KEPT, RETRY_MS, SessionEvents
from blendbus.testing import PythonPeer, serve_http

pytestmark = pytest.mark.anyio
SSE = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


async def open_session(http: httpx2.AsyncClient, url: str) -> dict[str, str]:
    """A 2025-11-25 session, opened as a client does; the headers its requests carry."""
    opened = await http.post(url, headers=SSE, json={"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "resumer", "version": "1"}}})
    headers = {**SSE, "mcp-session-id": opened.headers["mcp-session-id"], "mcp-protocol-version": "2025-11-25"}
    await http.post(url, headers=headers, json={"jsonrpc": "2.0", "method": "notifications/initialized"})
    return headers


def events(lines: list[str]) -> list[dict[str, str]]:
    found, event = [], {}
    for line in lines:
        if not line:
            if event:
                found.append(event)
            event = {}
            continue
        name, _, value = line.partition(":")
        event[name] = event.get(name, "") + value.strip()
    return found + ([event] if event else [])


async def test_a_broken_stream_resumes_with_its_answer(blendbus_server):
    async with serve_http(blendbus_server) as url, PythonPeer(lambda: connect(url)), \
            httpx2.AsyncClient(timeout=30) as http:
        headers = await open_session(http, url)
        seen: list[str] = []
        call = {"jsonrpc": "2.0", "id": 2, "method": "tools/call",
                "params": {"name": "blender_test_sleep", "arguments": {"seconds": 1}}}
        async with http.stream("POST", url, headers=headers, json=call) as stream:
            async for line in stream.aiter_lines():  # the priming event, then the stream breaks
                seen.append(line)
                if not line:
                    break
        priming = events(seen)[0]
        assert priming["id"] and priming["data"] == "" and priming["retry"] == str(RETRY_MS)

        async with httpx2.AsyncClient(timeout=30) as other:  # another session cannot replay it
            stranger = await open_session(other, url)
            refused = await other.get(url, headers={**stranger, "Last-Event-ID": priming["id"]}, timeout=3)
            assert "data:" not in refused.text  # its events are its session's alone: nothing replayed

        resumed: list[str] = []
        async with http.stream("GET", url, headers={**headers, "Last-Event-ID": priming["id"]}) as stream:
            assert stream.status_code == 200
            async for line in stream.aiter_lines():
                resumed.append(line)
                if line.startswith("data:") and '"id":2' in line:
                    break
        answer = json.loads(events(resumed)[-1]["data"])
        assert answer["id"] == 2 and answer["result"]["structuredContent"]["status"] == p.COMPLETED


async def test_what_a_session_keeps_is_bounded():
    store = SessionEvents()
    big = types.JSONRPCResponse(jsonrpc="2.0", id=7, result={"text": "x" * (KEPT_ANSWER_BYTES + 1)})
    first = await store.store_event("7", None)
    await store.store_event("7", big)
    replayed: list = []

    async def send(event):
        replayed.append(event.message)

    assert await store.replay_events_after(first, send) == "7"
    assert isinstance(replayed[0], types.JSONRPCError) and replayed[0].error.code == NOT_KEPT
    assert "blender_get_job" in replayed[0].error.message
    for n in range(KEPT_STREAMS + 5):
        await store.store_event(f"s{n}", None)
    assert await store.replay_events_after(first, send) is None  # the oldest streams went
    assert await store.replay_events_after("no-such-event", send) is None

    store, primed = SessionEvents(), {}
    answer = KEPT_BYTES * 3 // 8  # three of them are over the session's bytes
    for stream in ("a", "b", "c"):
        primed[stream] = await store.store_event(stream, None)
        await store.store_event(stream, types.JSONRPCResponse(jsonrpc="2.0", id=stream, result={"text": "x" * answer}))
    replayed.clear()
    assert await store.replay_events_after(primed["a"], send) is None  # the oldest went to make room
    assert await store.replay_events_after(primed["b"], send) == "b" and len(replayed[0].result["text"]) == answer
