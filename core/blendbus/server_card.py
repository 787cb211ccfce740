"""The Server Card (the MCP server-card extension, SEP-2127): what a registry or a host can learn
about this server before it connects: its name and version, where its streamable-HTTP endpoint is,
which protocol revisions it speaks, how it signs callers in, and (under `_meta`) its tools.

It is served where the extension's draft reserves it, `<MCP URL>/server-card`, listed in the
domain's MCP Catalog at `/.well-known/mcp/catalog.json`, and at `/.well-known/mcp/server-card.json`,
where hosts that follow the earlier draft look. Public by design: no secret is in it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from mcp_types.version import SUPPORTED_PROTOCOL_VERSIONS
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from . import __version__
from .server.builtin_tools import LLM

if TYPE_CHECKING:
    from .auth import TokenTable
    from .oauth.resource import ProtectedResource
    from .server import BlendbusServer

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


def listed_tools(server: BlendbusServer) -> list[dict[str, str]]:
    """The tools an LLM lists under the server's profile, by name and title."""
    listed = server.tools.listed(frozenset([LLM]), server.tools.toolset, apps=False)
    return [{"name": tool.name, "title": tool.title or tool.name} for tool in listed]


def card_routes(server: BlendbusServer, tokens: TokenTable | None, oauth: ProtectedResource | None) -> list[Route]:
    """The card, the catalog that lists it, and the earlier draft's path. Callers sign in with OAuth
    (named by its resource metadata), a bearer token, or not at all; the card's address is OAuth's public
    URL, or else the address the request came to."""
    auth = oauth.metadata_url if oauth is not None else "bearer" if tokens is not None else None
    public_url = oauth.public_url if oauth is not None else None

    def base_of(request: Request) -> str:
        return public_url or str(request.base_url).rstrip("/")

    async def card(request: Request) -> Response:
        return JSONResponse(server_card(base_of(request), auth, listed_tools(server)), media_type=MEDIA_TYPE,
                            headers=HEADERS)

    async def catalog(request: Request) -> Response:
        base = base_of(request)
        host = urlsplit(base).hostname or "localhost"
        return JSONResponse({"specVersion": "draft", "entries": [{
            "identifier": f"urn:air:{host}:blendbus", "displayName": "blendbus", "type": MEDIA_TYPE,
            "url": base + CARD_PATH}]}, headers=HEADERS)

    return [Route(CARD_PATH, card, methods=["GET"]), Route(LEGACY_PATH, card, methods=["GET"]),
            Route(CATALOG_PATH, catalog, methods=["GET"])]
