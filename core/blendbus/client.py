"""Connecting to a blendbus server as an MCP client (the CLI's `call`, and every peer)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client


@asynccontextmanager
async def connect(url: str, token: str | None = None, *, mode: str = "auto") -> AsyncIterator[Client]:
    """An MCP client on streamable HTTP with a bearer token and no SSE event size limit.

    The SDK drops SSE events over 1 MiB by default; blendbus results can be up to 64 MB, so the
    limit is lifted here. Other MCP clients need the same for large results (docs/limits.md).
    """
    headers = {"Authorization": f"Bearer {token}"} if token else None
    timeout = httpx2.Timeout(30.0, read=300.0)
    async with httpx2.AsyncClient(headers=headers, timeout=timeout) as http:
        transport = streamable_http_client(url, http_client=http, max_sse_event_size=None)
        async with Client(transport, mode=mode) as client:
            yield client


class ToolError(RuntimeError):
    """A tool call answered with isError; `value` is its structured content."""

    def __init__(self, tool: str, value: Any) -> None:
        self.tool, self.value = tool, value
        msg = value.get("error") if isinstance(value, dict) else value
        super().__init__(f"{tool}: {msg}")

    @property
    def code(self) -> str | None:
        return self.value.get("code") if isinstance(self.value, dict) else None


def structured(result: Any) -> Any:
    """A CallToolResult's structured content (or its JSON text, for servers that send only text)."""
    if result.structured_content is not None:
        return result.structured_content
    for block in result.content:
        if getattr(block, "type", None) == "text":
            try:
                return json.loads(block.text)
            except ValueError:
                return block.text
    return None


async def call(client: Client, tool: str, arguments: dict[str, Any], *, timeout: float | None = None) -> Any:
    """Call a tool and return its structured content; isError raises ToolError."""
    result = await client.call_tool(tool, arguments, read_timeout_seconds=timeout)
    value = structured(result)
    if result.is_error:
        raise ToolError(tool, value)
    return value


def describe_error(exc: BaseException) -> str:
    """One line naming the real cause, looking inside the SDK's exception groups."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return f"{type(exc).__name__}: {exc}"
