"""Malformed JSON-RPC at the MCP endpoint: never a crash, a hang or a leaked traceback."""

from __future__ import annotations

import json

import httpx2
import pytest

from blendbus.testing import call_envelope, serve_http
from blendbus.client import connect

pytestmark = pytest.mark.anyio

HEADERS = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
NASTY = [
    b"",
    b"{",
    b"\xff\xfe\x00garbage",
    b"[]",
    b"[1, 2, 3]",
    b'{"jsonrpc": "1.0", "id": 1, "method": "tools/list"}',
    b'{"jsonrpc": "2.0", "id": {"a": 1}, "method": "tools/list"}',
    b'{"jsonrpc": "2.0", "id": 1, "method": 42}',
    b'{"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": "nope"}',
    b'{"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": 5, "arguments": []}}',
    b'{"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "blender_test_echo", "arguments": {"value": "\xff"}}}',
    json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                "params": {"name": "x" * 200_000, "arguments": {}}}).encode(),
    b'{"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": ' + b"[" * 50_000 + b"]" * 50_000 + b"}",
    b'{"jsonrpc": "2.0", "id": 1, "method": "no/such/method"}',
]


async def test_the_endpoint_survives_garbage(blendbus_server, blendbus_peer_factory):
    async with serve_http(blendbus_server) as url:
        async with httpx2.AsyncClient(timeout=20) as http:
            for body in NASTY:
                for headers in (HEADERS, {**HEADERS, "MCP-Protocol-Version": "2026-07-28"}):
                    r = await http.post(url, content=body, headers=headers)
                    assert r.status_code < 500, (body[:80], r.status_code, r.text[:300])
                    assert "Traceback" not in r.text and 'File "' not in r.text
        async with connect(url) as client:  # still serving real calls
            env = await call_envelope(client, "blender_list_clients")
            assert env == {"clients": []}


async def test_dns_rebinding_is_refused(blendbus_server):
    body = b'{"jsonrpc":"2.0","id":1,"method":"tools/list"}'
    async with serve_http(blendbus_server) as url:
        async with httpx2.AsyncClient() as http:
            for extra in ({"Host": "evil.example:8765"}, {"Origin": "http://evil.example"}):
                r = await http.post(url, content=body, headers={**HEADERS, **extra})
                assert r.status_code in (400, 403, 421), (extra, r.status_code)
