"""A session-era client across its requests: the connection that outlives each request, and the key
its per-session state (subscriptions, log level) is filed under."""

from __future__ import annotations

from typing import Any


def session_key(connection: Any) -> str:
    """What a client connection's subscriptions are filed under: its MCP session id (HTTP), or the
    connection itself where there is no session (stdio, in memory: one client for the process)."""
    return connection.session_id or f"connection-{id(connection)}"


def connection_of(session: Any) -> Any:
    """The client connection behind a request's ServerSession. The SDK builds a ServerSession per
    request and offers no public accessor for its connection, which is what lives as long as the
    client and can send it notifications later (`Connection.send_resource_updated`)."""
    connection = getattr(session, "_connection", None)
    if connection is None or not hasattr(connection, "send_resource_updated"):
        raise RuntimeError("this mcp SDK's ServerSession has no connection: resources/subscribe needs updating")
    return connection
