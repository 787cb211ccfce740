"""The status page's live streams are capped per user, share one snapshot per bus and change, and drop
readers that stop reading; the page cannot be framed (security round 3, #6 and a weak spot).

The attack: each `/status/api/events` stream built its own snapshot, with every peer's full
registration; 100 unread streams from one LLM token took a replica from 636 to 1,127 MB.
"""

from __future__ import annotations

import asyncio
import json
import socket
from contextlib import AsyncExitStack
from typing import Any
from urllib.parse import urlsplit

import httpx2
import pytest

from blendbus import status
from blendbus.dispatch import Limits
from blendbus.testing import make_server, serve_http
from blendbus.testing import plugin as testing_plugin
from blendbus.testing.raw import ModernClient

pytestmark = pytest.mark.anyio
TOKENS = {"tok-alice": "alice", "tok-bob": "bob"}


class Snapshots:
    """The snapshots one status stream sends, one at a time."""

    def __init__(self, stream: httpx2.Response) -> None:
        self.lines = stream.aiter_lines()

    async def next(self) -> dict[str, Any]:
        async for line in self.lines:
            if line.startswith("data: "):
                return json.loads(line.removeprefix("data: "))
        raise AssertionError("the stream ended without a snapshot")


async def _register(http: httpx2.AsyncClient, url: str, uuid: str, padding: int) -> None:
    """A peer registration carrying `padding` bytes of capabilities: what every snapshot repeats."""
    answer = await ModernClient(http, url, "tok-alice").call("blender_register_client", {
        "client_uuid": uuid, "capabilities": {"note": "p" * padding}})
    assert not answer.get("isError"), answer


async def test_streams_are_capped_per_user_and_share_their_snapshots(tmp_path, monkeypatch):
    built: list[str] = []
    snapshot = status.snapshot

    async def counted(hub: Any, user_id: str, thumbnails: Any) -> dict[str, Any]:
        built.append(user_id)
        return await snapshot(hub, user_id, thumbnails)

    monkeypatch.setattr(status, "snapshot", counted)
    server = make_server([("testing", testing_plugin)], state_dir=tmp_path / "state",
                         limits=Limits(max_status_streams_per_user=4, peer_grace_s=60))
    async with serve_http(server, tokens=TOKENS) as url, httpx2.AsyncClient(timeout=30) as http:
        events = url.rsplit("/mcp", 1)[0] + "/status/api/events"
        alice, bob = {"Authorization": "Bearer tok-alice"}, {"Authorization": "Bearer tok-bob"}
        async with AsyncExitStack() as stack:
            streams = [Snapshots(await stack.enter_async_context(http.stream("GET", events, headers=alice)))
                       for _ in range(4)]
            for stream in streams:
                assert (await stream.next())["user"] == "alice"
            assert len(built) == 1  # four streams of one bus: one snapshot
            fifth = await http.get(events, headers=alice)
            assert fifth.status_code == 429 and "4 status streams" in fifth.json()["error"]
            async with http.stream("GET", events, headers=bob) as theirs:  # bob's cap is his own
                assert (await Snapshots(theirs).next())["user"] == "bob"
            built.clear()
            await _register(http, url, "studio", 100)
            for stream in streams:  # every stream hears of the change...
                assert [p["client_uuid"] for p in (await stream.next())["peers"]] == ["studio"]
            assert built == ["alice"]  # ...from one snapshot built for all of them
        for _ in range(100):  # closed streams free their places
            if server.waits.held("alice", status.STREAMS) == 0:
                break
            await asyncio.sleep(0.05)
        assert server.waits.held("alice", status.STREAMS) == 0


async def test_a_reader_that_stops_reading_is_dropped(tmp_path, monkeypatch):
    monkeypatch.setattr(status, "SLOW_READER_S", 1.0)
    server = make_server([("testing", testing_plugin)], state_dir=tmp_path / "state",
                         limits=Limits(peer_grace_s=60))
    async with serve_http(server, tokens=TOKENS) as url, httpx2.AsyncClient(timeout=30) as http:
        events = url.rsplit("/mcp", 1)[0] + "/status/api/events"
        for n in range(4):  # every snapshot now carries about 1 MB of registrations
            await _register(http, url, f"big-{n}", 250_000)
        parts = urlsplit(events)
        stuck = socket.socket()
        stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        stuck.connect((parts.hostname, parts.port))
        stuck.sendall(f"GET {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\nAuthorization: Bearer tok-alice\r\n\r\n"
                      .encode())
        try:
            async with http.stream("GET", events, headers={"Authorization": "Bearer tok-alice"}) as response:
                reading = Snapshots(response)
                assert len((await reading.next())["peers"]) == 4
                for n in range(60):  # changes keep coming; one reader reads them, the other never does
                    if server.waits.held("alice", status.STREAMS) == 1:
                        break
                    await _register(http, url, f"small-{n}", 10)
                    while len((await reading.next())["peers"]) < 5 + n:
                        pass
                    await asyncio.sleep(0.1)
                assert server.waits.held("alice", status.STREAMS) == 1  # the stuck reader was dropped
        finally:
            stuck.close()


async def test_the_page_cannot_be_framed(blendbus_server):
    async with serve_http(blendbus_server) as url, httpx2.AsyncClient() as http:
        page = await http.get(url.rsplit("/mcp", 1)[0] + "/")
        assert page.headers["x-frame-options"] == "DENY"
        assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
