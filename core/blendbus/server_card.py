"""The Server Card (the MCP server-card extension, SEP-2127): what a registry or a host can learn
about this server before it connects: its name and version, where its streamable-HTTP endpoint is,
which protocol revisions it speaks, how it signs callers in, and (under `_meta`) its tools.

It is served where the extension's draft reserves it, `<MCP URL>/server-card`, listed in the
domain's MCP Catalog at `/.well-known/mcp/catalog.json`, and at `/.well-known/mcp/server-card.json`,
where hosts that follow the earlier draft look. Public by design: no secret is in it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from mcp_types.version import SUPPORTED_PROTOCOL_VERSIONS
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from . import __version__

SCHEMA = "https://static.modelcontextprotocol.io/schemas/v2/server-card.schema.json"
MEDIA_TYPE = "application/mcp-server-card+json"
CARD_PATH = "/mcp/server-card"
CATALOG_PATH = "/.well-known/mcp/catalog.json"
LEGACY_PATH = "/.well-known/mcp/server-card.json"
META_KEY = "dev.blendbus/tools"
HEADERS = {"access-control-allow-origin": "*", "access-control-allow-methods": "GET",
           "access-control-allow-headers": "Content-Type", "cache-control": "public, max-age=3600"}
DESCRIPTION = "Drive Blender from an LLM: scenes, code, renders, assets, through Blender peers on a bus."


def card_name(base: str) -> str:
    """The card's reverse-DNS name, from the host it is served at: `bus.example.com` -> `com.example.bus/blendbus`."""
    host = urlsplit(base).hostname or "localhost"
    return ".".join(reversed(host.split("."))) + "/blendbus"


def server_card(base: str, auth: str | None, tools: list[dict[str, str]]) -> dict[str, Any]:
    """The card of the server at `base` (scheme://host[:port]). `auth`: None (open, loopback), "bearer"
    (a token in the Authorization header), or the URL of the OAuth resource metadata (RFC 9728)."""
    remote: dict[str, Any] = {"type": "streamable-http", "url": base + "/mcp",
                              "supportedProtocolVersions": list(SUPPORTED_PROTOCOL_VERSIONS)}
    if auth is not None:
        remote["headers"] = [{
            "name": "Authorization", "isRequired": True, "isSecret": True, "value": "Bearer {token}",
            "description": ("An OAuth access token (the host signs in from the 401's resource metadata: "
                            f"{auth}), or a token from `blendbus token new`" if auth != "bearer"
                            else "A token from `blendbus token new USER` on the server's machine"),
            "variables": {"token": {"description": "The bearer token", "isRequired": True, "isSecret": True}}}]
    return {"$schema": SCHEMA, "name": card_name(base), "version": __version__, "title": "blendbus",
            "description": DESCRIPTION, "remotes": [remote], "_meta": {META_KEY: tools}}


def card_routes(tools: Callable[[], list[dict[str, str]]], auth: str | None, public_url: str | None) -> list[Route]:
    """The card, the catalog that lists it, and the earlier draft's path. `tools`: name and title of each
    tool an LLM may list (the server's profile); `public_url`: where clients reach this server, or None
    (then the address the request came to)."""

    def base_of(request: Request) -> str:
        return public_url or str(request.base_url).rstrip("/")

    async def card(request: Request) -> Response:
        return JSONResponse(server_card(base_of(request), auth, tools()), media_type=MEDIA_TYPE, headers=HEADERS)

    async def catalog(request: Request) -> Response:
        base = base_of(request)
        host = urlsplit(base).hostname or "localhost"
        return JSONResponse({"specVersion": "draft", "entries": [{
            "identifier": f"urn:air:{host}:blendbus", "displayName": "blendbus", "type": MEDIA_TYPE,
            "url": base + CARD_PATH}]}, headers=HEADERS)

    return [Route(CARD_PATH, card, methods=["GET"]), Route(LEGACY_PATH, card, methods=["GET"]),
            Route(CATALOG_PATH, catalog, methods=["GET"])]
