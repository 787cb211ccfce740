"""MCP clients that are nothing but HTTP requests, written out as the specification shows them.

For what the official SDK clients cannot do, or would hide: tasks in either era, listening,
abandoning a request mid-stream, a client that never says goodbye. `ModernClient` speaks the
stateless 2026-07-28 revision; `SessionClient` the 2025-11-25 session era.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx2

MODERN = "2026-07-28"
SESSION_ERA = "2025-11-25"
TASKS = "io.modelcontextprotocol/tasks"
_ids = itertools.count(1)


def frames(text: str) -> list[dict[str, Any]]:
    """The JSON-RPC messages of an SSE body (a priming event, an id with empty data, carries none)."""
    return [json.loads(line[5:]) for line in text.splitlines() if line.startswith("data:") and line[5:].strip()]


def _answer(response: httpx2.Response, request_id: int) -> dict[str, Any]:
    """The JSON-RPC answer to `request_id` (a JSON-RPC error may come with an HTTP error status); an
    HTTP error without one (401, 429, ...) is raised as HTTPStatusError."""
    kind = response.headers.get("content-type", "")
    if kind.startswith("text/event-stream"):
        return next(f for f in frames(response.text) if f.get("id") == request_id)
    if not kind.startswith("application/json"):
        response.raise_for_status()
    return response.json()


class ModernClient:
    """A 2026-07-28-era client: every request carries its own protocol version and capabilities."""

    def __init__(self, http: httpx2.AsyncClient, url: str, token: str | None, tasks: bool = True,
                 elicitation: bool = False) -> None:
        self.http, self.url, self.token, self.tasks, self.elicitation = http, url, token, tasks, elicitation

    def _meta(self) -> dict[str, Any]:
        extensions = {TASKS: {}} if self.tasks else {}
        capabilities = {"extensions": extensions, **({"elicitation": {"form": {}}} if self.elicitation else {})}
        return {"io.modelcontextprotocol/protocolVersion": MODERN,
                "io.modelcontextprotocol/clientCapabilities": capabilities}

    def _headers(self, method: str, params: dict[str, Any]) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream",
                   "MCP-Protocol-Version": MODERN, "Mcp-Method": method}
        if self.token is not None:  # None: a server without tokens (loopback)
            headers["Authorization"] = f"Bearer {self.token}"
        if method == "tools/call":
            headers["Mcp-Name"] = params["name"]
        return headers

    async def __call__(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        params = params or {}
        body = {"jsonrpc": "2.0", "id": next(_ids), "method": method, "params": {**params, "_meta": self._meta()}}
        r = await self.http.post(self.url, content=json.dumps(body), headers=self._headers(method, params))
        return _answer(r, body["id"])

    async def listen(self, notifications: dict[str, Any], into: list[dict[str, Any]],
                     request_id: int | None = None) -> None:
        """A `subscriptions/listen` stream: its frames are appended to `into` as they arrive. Each frame
        names the stream by its request's id: `request_id`, or the next of this module's ids."""
        params = {"notifications": notifications}
        body = {"jsonrpc": "2.0", "id": next(_ids) if request_id is None else request_id, "method": "subscriptions/listen",
                "params": {**params, "_meta": self._meta()}}
        async with self.http.stream("POST", self.url, content=json.dumps(body),
                                    headers=self._headers("subscriptions/listen", params), timeout=None) as response:
            async for line in response.aiter_lines():
                if line.startswith("data:"):
                    into.append(json.loads(line[5:]))

    async def call(self, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
        return (await self("tools/call", {"name": name, "arguments": arguments}))["result"]


class SessionClient:
    """A 2025-11-25-era client: `initialize` opens a session; each request is answered on its own POST's
    SSE stream. `open()` first; `close()` sends DELETE (a client that vanishes never does)."""

    def __init__(self, http: httpx2.AsyncClient, url: str, token: str | None = None,
                 capabilities: dict[str, Any] | None = None) -> None:
        self.http, self.url, self.token = http, url, token
        self.capabilities = capabilities if capabilities is not None else {"tasks": {}}
        self.session_id: str | None = None

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream",
                   "MCP-Protocol-Version": SESSION_ERA}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        if self.session_id:
            headers["Mcp-Session-Id"] = self.session_id
        return headers

    async def open(self) -> SessionClient:
        body = {"jsonrpc": "2.0", "id": next(_ids), "method": "initialize", "params": {
            "protocolVersion": SESSION_ERA, "capabilities": self.capabilities,
            "clientInfo": {"name": "raw-session-client", "version": "1"}}}
        r = await self.http.post(self.url, content=json.dumps(body), headers=self._headers())
        r.raise_for_status()
        self.session_id = r.headers["mcp-session-id"]
        self.initialized = _answer(r, body["id"])["result"]
        await self.http.post(self.url, content=json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}),
                             headers=self._headers())
        return self

    def request(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        return {"jsonrpc": "2.0", "id": next(_ids), "method": method, "params": params or {}}

    async def __call__(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        body = self.request(method, params)
        r = await self.http.post(self.url, content=json.dumps(body), headers=self._headers())
        return _answer(r, body["id"])

    @asynccontextmanager
    async def streaming(self, method: str, params: dict[str, Any] | None = None) -> AsyncIterator[httpx2.Response]:
        """Send a request and hold its answer's stream open; leaving the block hangs up on it."""
        body = self.request(method, params)
        async with self.http.stream("POST", self.url, content=json.dumps(body), headers=self._headers(),
                                    timeout=None) as response:
            yield response

    async def close(self) -> int:
        """End the session (DELETE); returns the HTTP status."""
        return (await self.http.delete(self.url, headers=self._headers())).status_code
