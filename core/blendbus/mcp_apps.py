"""MCP Apps (extension `io.modelcontextprotocol/ui`, 2026-01-26): what a host that speaks it gets.

A plugin declares an App (a `ui://` HTML document) with `register_apps`, and names it on the
Commands whose results it shows (`Command.app`). For a client that negotiated the extension (it
lists `text/html;profile=mcp-app` in `capabilities.extensions["io.modelcontextprotocol/ui"]`):

- those tools carry `_meta.ui = {resourceUri, visibility}`;
- app-only tools (`visibility: ["app"]`) are listed, for the host to keep from its LLM and let the
  App's view call;
- `resources/list` names the Apps, and `resources/read` serves each as `text/html;profile=mcp-app`.

Every other client sees the tools list, results and resources exactly as before: no `_meta.ui`, no
app-only tools (a call to one is refused with the reason), no `ui://` resources. The same App is
readable by anyone who asks for it by URI, since it is static and holds nothing of the user's.
"""

from __future__ import annotations

from typing import Any

import mcp_types as types
from mcp.client.extension import ClientExtension, advertise
from mcp.server.apps import APP_MIME_TYPE, EXTENSION_ID, client_supports_apps

from .command import Command
from .primitives import App

__all__ = ["APP_MIME_TYPE", "EXTENSION_ID", "contents", "host", "listed", "negotiated", "refusal", "tool_meta"]


def negotiated(ctx: Any) -> bool:
    """Whether the caller negotiated MCP Apps: in its handshake (2025-11-25) or on this request (2026-07-28)."""
    session = getattr(ctx, "session", None)
    if session is None or getattr(session, "client_capabilities", None) is None:
        return False  # no handshake yet, or an in-process caller
    return client_supports_apps(ctx)


def tool_meta(cmd: Command) -> dict[str, Any] | None:
    """A tool's `_meta` for an Apps host: the App that shows its results, and who may call it."""
    if cmd.app is None:
        return None
    return {"ui": {"resourceUri": cmd.app, "visibility": list(cmd.visibility)}}


def refusal(cmd: Command) -> str:
    """Why a client without MCP Apps may not call an app-only tool."""
    return (f"{cmd.tool_name} is called by the {cmd.app} view of an MCP Apps host only (visibility: app); a client"
            f" that does not negotiate the {EXTENSION_ID} extension cannot call it")


def listed(app: App) -> types.Resource:
    """An App as `resources/list` names it."""
    return types.Resource(uri=app.uri, name=app.name, description=app.description or None, mime_type=APP_MIME_TYPE,
                          meta={"ui": app.ui_meta} if app.ui_meta else None)


def contents(app: App) -> types.ReadResourceResult:
    """An App as `resources/read` serves it: the whole document, with its rendering hints."""
    return types.ReadResourceResult(contents=[types.TextResourceContents(
        uri=app.uri, mime_type=APP_MIME_TYPE, text=app.document, meta={"ui": app.ui_meta} if app.ui_meta else None)])


def host() -> ClientExtension:
    """What an MCP client declares to be an Apps host (`blendbus.client.connect(extensions=[host()])`)."""
    return advertise(EXTENSION_ID, {"mimeTypes": [APP_MIME_TYPE]})
