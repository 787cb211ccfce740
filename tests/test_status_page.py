"""The status page at / in a real browser (Debian's chromium, headless): each token sees its own
bus, live (server-sent events); the JSON API behind it has the same auth as /mcp; an operator
sees every bus. `BLENDBUS_UPDATE_DOCS=1` also writes the screenshot in docs/images/status-page.png."""

from __future__ import annotations

import json
import os
from pathlib import Path

import anyio
import httpx2
import pytest

from blendbus.client import connect
from blendbus.testing import PythonPeer, call_envelope, serve_http
from blendbus.testing.browser import browser_page

from .accessibility import violations

pytestmark = pytest.mark.anyio
DOCS_IMAGE = Path(__file__).parents[1] / "docs" / "images" / "status-page.png"
TOKENS = {"tok-alice": "alice", "tok-bob": "bob", "tok-alice-peer": {"user": "alice", "role": "peer"},
          "tok-ops": {"user": "ops", "role": "operator"}}


async def text_of(page, selector: str, wanted: str, seconds: float = 30.0) -> str:
    """The element's text once it contains `wanted` (the page fills itself in from the API)."""
    with anyio.fail_after(seconds):
        while wanted not in (text := await page.locator(selector).inner_text()):
            await anyio.sleep(0.05)
    return text


async def test_each_token_sees_its_own_bus(blendbus_server, tmp_path):
    async with serve_http(blendbus_server, tokens=TOKENS) as url:
        base = url.rsplit("/mcp", 1)[0]
        async with PythonPeer(lambda: connect(url, "tok-alice"), uuid="alice-studio"), \
                PythonPeer(lambda: connect(url, "tok-bob"), uuid="bob-laptop"):
            async with connect(url, "tok-alice") as alice, connect(url, "tok-bob") as bob:
                assert (await call_envelope(alice, "blender_test_image"))["status"] == "completed"
                await call_envelope(alice, "blender_test_echo", {"value": "hello"})
                await call_envelope(alice, "blender_test_fail", {"message": "the handler says why"})
                await call_envelope(bob, "blender_test_fail", {"message": "bob's own"})
            async with browser_page(1100, 520) as page:
                await page.goto(f"{base}/#token=tok-alice")
                assert "Bus of alice" in await text_of(page, "#who", "Bus of alice")
                peers, jobs = await page.locator("#peers").inner_text(), await text_of(page, "#jobs", "test_echo")
                assert "alice-studio" in peers and "bob-laptop" not in peers
                assert "test_image" in jobs and "bob's own" not in jobs
                assert "RuntimeError: the handler says why" in jobs  # a failure's reason, in its row
                thumb = page.locator("#jobs img.thumb")
                assert (await thumb.get_attribute("src")).startswith("data:image/png;base64,")
                if os.environ.get("BLENDBUS_UPDATE_DOCS"):
                    await page.screenshot(path=str(DOCS_IMAGE))
                assert not (found := await violations(page)), found  # axe-core: no WCAG violation
                # Live: a new job shows up without a reload (the page follows /status/api/events).
                async with connect(url, "tok-alice") as alice:
                    await call_envelope(alice, "blender_test_echo", {"value": "live"})
                    await call_envelope(alice, "blender_test_sleep", {"seconds": 0.1})
                assert "test_sleep" in await text_of(page, "#jobs", "test_sleep")
            async with browser_page() as page:  # a new tab: no token kept
                await page.goto(f"{base}/")
                assert "This server needs a token." in await text_of(page, "#who", "needs a token")
                assert not (found := await violations(page)), found  # the token form too
        async with httpx2.AsyncClient() as http:
            api = f"{base}/status/api"
            assert (await http.get(api)).status_code == 401
            assert (await http.get(api, headers={"Authorization": "Bearer tok-alice-peer"})).status_code == 403
            mine = (await http.get(api, headers={"Authorization": "Bearer tok-bob"})).json()
            assert mine["user"] == "bob" and [j["command"] for j in mine["jobs"]] == ["test_fail"]
            rebound = await http.get(api, headers={"Authorization": "Bearer tok-bob", "Host": "evil.example"})
            assert rebound.status_code == 421  # the Host check of /mcp holds here too
            nosy = await http.get(api, params={"user": "alice"}, headers={"Authorization": "Bearer tok-bob"})
            assert nosy.status_code == 403 and "operator" in nosy.json()["error"]
            assert (await http.get(f"{api}/events")).status_code == 401  # the stream: the same auth
            async with http.stream("GET", f"{api}/events", headers={"Authorization": "Bearer tok-bob"}) as stream:
                assert stream.headers["content-type"].startswith("text/event-stream")
                first = await anext(stream.aiter_lines())
                assert json.loads(first.removeprefix("data: "))["user"] == "bob"


async def test_an_operator_sees_every_bus_and_calls_nothing(blendbus_server):
    async with serve_http(blendbus_server, tokens=TOKENS) as url:
        base = url.rsplit("/mcp", 1)[0]
        async with PythonPeer(lambda: connect(url, "tok-alice"), uuid="alice-studio"), \
                PythonPeer(lambda: connect(url, "tok-bob"), uuid="bob-laptop"):
            async with connect(url, "tok-bob") as bob:
                await call_envelope(bob, "blender_test_echo", {"value": "bob's"})
            async with httpx2.AsyncClient(headers={"Authorization": "Bearer tok-ops"}) as http:
                first = (await http.get(f"{base}/status/api")).json()
                assert first["operator"] is True and first["users"] == ["alice", "bob"] and first["user"] == "alice"
                assert [peer["client_uuid"] for peer in first["peers"]] == ["alice-studio"] and first["jobs"] == []
                bobs = (await http.get(f"{base}/status/api", params={"user": "bob"})).json()
                assert [peer["client_uuid"] for peer in bobs["peers"]] == ["bob-laptop"]
                assert [job["command"] for job in bobs["jobs"]] == ["test_echo"]
            async with browser_page() as page:
                await page.goto(f"{base}/#token=tok-ops")
                await text_of(page, "#who", "Bus of alice")
                assert await page.locator("#user option").all_inner_texts() == ["alice", "bob"]
                await page.locator("#user").select_option("bob")
                await text_of(page, "#who", "Bus of bob")
                assert "bob-laptop" in await text_of(page, "#peers", "bob-laptop")
                assert not (found := await violations(page)), found  # the operator's user picker too
            async with connect(url, "tok-ops") as ops:  # an operator looks; it does not drive Blender
                refused = await ops.call_tool("blender_list_clients", {})
                assert refused.is_error and "needs a token with the llm role" in refused.structured_content["error"]


async def test_without_tokens_loopback_shows_user_local(blendbus_server):
    async with serve_http(blendbus_server) as url:
        base = url.rsplit("/mcp", 1)[0]
        async with PythonPeer(lambda: connect(url), uuid="local-peer"), browser_page() as page:
            await page.goto(f"{base}/")
            assert "Bus of local" in await text_of(page, "#who", "Bus of local")
            assert "local-peer" in await page.locator("#peers").inner_text()
            assert "No job yet." in await page.locator("#jobs").inner_text()
