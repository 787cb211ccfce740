"""The Server Card (MCP server-card extension): public, before any connection, at the path the
draft reserves, listed in the domain's MCP Catalog, and at the earlier draft's well-known path."""

from __future__ import annotations

import re

import httpx2
import pytest

from blendbus import __version__
from blendbus.testing import serve_http

pytestmark = pytest.mark.anyio


async def test_the_card_tells_a_host_where_and_how_to_connect(blendbus_server):
    async with serve_http(blendbus_server, tokens={"tok": "alice"}) as url, httpx2.AsyncClient(timeout=30) as http:
        origin = url.removesuffix("/mcp")
        answer = await http.get(url + "/server-card", headers={"accept": "application/mcp-server-card+json"})
        legacy = (await http.get(origin + "/.well-known/mcp/server-card.json")).json()
        catalog = (await http.get(origin + "/.well-known/mcp/catalog.json")).json()
        refused = await http.post(url, json={})
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("application/mcp-server-card+json")
    assert answer.headers["access-control-allow-origin"] == "*"
    card = answer.json()
    assert card == legacy
    assert card["$schema"] == "https://static.modelcontextprotocol.io/schemas/v2/server-card.schema.json"
    assert re.fullmatch(r"[a-zA-Z0-9.-]+/[a-zA-Z0-9._-]+", card["name"]) and card["version"] == __version__
    assert 1 <= len(card["description"]) <= 100
    (remote,) = card["remotes"]
    assert remote["type"] == "streamable-http" and remote["url"] == url
    assert {"2025-11-25", "2026-07-28"} <= set(remote["supportedProtocolVersions"])
    (header,) = remote["headers"]
    assert header["name"] == "Authorization" and header["isRequired"] and header["isSecret"]
    tools = {tool["name"] for tool in card["_meta"]["dev.blendbus/tools"]}
    assert "blender_execute_code" in tools and "blender_poll_jobs" not in tools  # an LLM's list, not a peer's
    (entry,) = catalog["entries"]
    assert entry["type"] == "application/mcp-server-card+json" and entry["url"] == url + "/server-card"
    assert refused.status_code == 401  # the card is open; the endpoint is not


async def test_an_oauth_server_card_points_to_its_sign_in(blendbus_server):
    async with serve_http(blendbus_server, tokens={"tok": "alice"}, oauth="builtin") as url, \
            httpx2.AsyncClient(timeout=30) as http:
        card = (await http.get(url + "/server-card")).json()
    assert "/.well-known/oauth-protected-resource/mcp" in card["remotes"][0]["headers"][0]["description"]
