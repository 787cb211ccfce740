"""A stdio MCP client served by a blendbus server that already runs.

A host launches `blendbus serve --stdio` as configured; on a machine where `blendbus serve` already
runs on that port (with a GUI Blender attached, say), the second server cannot listen there. Rather
than fail with a message the host never shows ("Connection closed"), the stdio side then relays
every message, both ways, to the server that holds the port: the host gets that server's bus, its
peers and its jobs. When something other than blendbus holds the port, every request the host
makes is answered with an MCP error that names the port and the fix.

`blendbus relay --server URL` does the same for any server, local or remote: the way a host that
only launches stdio servers (Claude Desktop) reaches a hosted bus.
"""

from __future__ import annotations

import json
import logging
import sys
import urllib.error
import urllib.request
from typing import Any

import anyio
import httpx2
from mcp.client.streamable_http import streamable_http_client
from mcp.server.stdio import stdio_server
from mcp.shared.message import SessionMessage
from mcp_types import ErrorData, JSONRPCError, JSONRPCRequest

log = logging.getLogger(__name__)
SERVICE = "blendbus"
"""What `/healthz` says it is: how a second server tells a blendbus server from anything else on a port."""
CANNOT_SERVE = -32000
"""The JSON-RPC error code of every answer a stdio client gets when the port is held by another program."""


def holder(host: str, port: int) -> str | None:
    """The /mcp URL of the blendbus server listening on host:port, or None if what listens is not blendbus."""
    where = f"[{host}]" if ":" in host else host
    try:
        with urllib.request.urlopen(f"http://{where}:{port}/healthz", timeout=3) as response:
            answer = json.loads(response.read(65536) or b"{}")
    except (OSError, ValueError, urllib.error.URLError):
        return None
    return f"http://{where}:{port}/mcp" if isinstance(answer, dict) and answer.get("service") == SERVICE else None


async def relay(url: str, token: str | None) -> None:
    """Relay this process's stdio MCP client to the server at `url` until the client leaves."""
    headers = {"Authorization": f"Bearer {token}"} if token else None
    async with httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30.0, read=3600.0)) as http, \
            streamable_http_client(url, http_client=http, max_sse_event_size=None) as (upstream_in, upstream_out, *_), \
            stdio_server() as (local_in, local_out):
        async with anyio.create_task_group() as pumps:
            async def forward(source: Any, sink: Any, what: str) -> None:
                async for message in source:
                    if isinstance(message, Exception):  # a transport hiccup: say it, keep relaying
                        log.warning("relay (%s): %s", what, message)
                        continue
                    await sink.send(message)
                pumps.cancel_scope.cancel()  # one side ended: the relay ends

            pumps.start_soon(forward, local_in, upstream_out, "from the client")
            pumps.start_soon(forward, upstream_in, local_out, "from the server")


async def refuse(reason: str) -> None:
    """Answer every request of this process's stdio MCP client with an error naming `reason`, until it leaves."""
    async with stdio_server() as (local_in, local_out):
        async for message in local_in:
            if isinstance(message, SessionMessage) and isinstance(message.message, JSONRPCRequest):
                await local_out.send(SessionMessage(JSONRPCError(jsonrpc="2.0", id=message.message.id,
                                                                 error=ErrorData(code=CANNOT_SERVE, message=reason))))


def announce(text: str) -> None:
    print(f"blendbus: {text}", file=sys.stderr, flush=True)
