"""Slow and oversized clients cannot deny service (security round 2, #7; the disconnect log of #10).

The attacks: 1,100 slow, unauthenticated connections used up the file descriptors; half-sent 60 MiB
bodies were held with no limit; LLM tools accepted 65 MiB bodies; 8 registrations of 50 MiB each
kept 400 MiB in memory. Attacks come from 127.0.0.2, the test's own client from 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import json
import logging

import pytest

from blendbus.client import ToolError, call, connect
from blendbus.dispatch import Limits
from blendbus.testing import call_envelope, eventually, make_server, serve_http
from blendbus.testing import plugin as testing_plugin

pytestmark = pytest.mark.anyio
ATTACKER = ("127.0.0.2", 0)


def _server(**limits: float) -> object:
    return make_server([("testing", testing_plugin)], limits=Limits(peer_grace_s=1.5, poll_wait_s=5.0, **limits))


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1].split("/")[0])


async def _closed_by_server(reader: asyncio.StreamReader, within_s: float) -> bool:
    try:
        while await asyncio.wait_for(reader.read(4096), within_s):
            pass
        return True
    except (TimeoutError, ConnectionError):
        return False


async def test_slow_headers_cannot_exhaust_connections():
    server = _server(header_timeout_s=1.0, max_pending_per_address=32)
    async with serve_http(server) as url:
        slow = []
        for _ in range(1100):
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", _port(url), local_addr=ATTACKER)
            except OSError:
                continue
            writer.write(b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")  # and never finish
            slow.append((reader, writer))
        async with connect(url) as client:  # everyone else is still served, at once
            assert "clients" in await call(client, "blender_list_clients", {}, timeout=5)
        closed = await asyncio.gather(*(_closed_by_server(r, 5.0) for r, _ in slow))
        assert all(closed)  # every slow connection was cut: refused at once, or at the header deadline
        for _, writer in slow:
            writer.close()
        async with connect(url) as client:
            assert "clients" in await call(client, "blender_list_clients", {}, timeout=5)


async def test_stalled_and_oversized_bodies_are_cut(caplog):
    server = _server(body_idle_timeout_s=0.5, body_grace_s=0.5)
    tokens = {"llm": {"user": "u", "role": "llm"}, "peer": {"user": "u", "role": "peer"}}
    async with serve_http(server, tokens=tokens) as url:
        port = _port(url)

        async def post(token: str, length: int, send: int) -> bytes:
            reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=ATTACKER)
            writer.write(f"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
                         f"Content-Type: application/json\r\nAccept: application/json, text/event-stream\r\n"
                         f"Content-Length: {length}\r\n\r\n".encode() + b" " * send)
            await writer.drain()
            answer = await asyncio.wait_for(reader.read(200), 10)
            writer.close()
            return answer

        # A half-sent 60 MiB body is dropped once it stalls, not held.
        assert b" 408 " in await post("peer", 60 * 1024 * 1024, 1024 * 1024)
        # LLM tokens get a body limit near the argument cap; peers near the result cap.
        assert b" 413 " in await post("llm", 10 * 1024 * 1024, 0)
        assert b" 408 " in await post("peer", 10 * 1024 * 1024, 0)  # accepted size, then too slow
        # A client that leaves mid-upload costs one log line, no traceback.
        caplog.set_level(logging.INFO)
        reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=ATTACKER)
        writer.write(b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer peer\r\n"
                     b"Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n" + b" " * 5000)
        await writer.drain()
        await asyncio.sleep(0.2)
        writer.close()

        async def logged() -> bool:
            return "disconnected after sending" in caplog.text

        await eventually(logged, "the departure is logged", 10)
        assert "Traceback" not in caplog.text


async def test_registration_metadata_and_peer_count_are_capped():
    server = _server(max_peers_per_user=3)
    async with serve_http(server) as url:
        async with connect(url) as peer:
            with pytest.raises(ToolError, match="above the cap of 262144"):
                await call(peer, "blender_register_client", {"client_uuid": "fat", "capabilities": {"x": "y" * 300_000}})
            for i in range(3):
                await call(peer, "blender_register_client", {"client_uuid": f"p{i}", "instance": "i"})
            with pytest.raises(ToolError, match="3 peers are registered on this bus"):
                await call(peer, "blender_register_client", {"client_uuid": "p3", "instance": "i"})
            listed = await call_envelope(peer, "blender_list_clients")
            assert sorted(c["client_uuid"] for c in listed["clients"]) == ["p0", "p1", "p2"]
            assert len(json.dumps(listed)) < 10_000
