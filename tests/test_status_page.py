"""The status page at / in a real browser (Debian's chromium, headless): each token sees its own
bus, live; the JSON API behind it has the same auth as /mcp. `BLENDBUS_UPDATE_DOCS=1` also writes
the screenshot in docs/images/status-page.png."""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path

import httpx2
import pytest

from blendbus.client import connect
from blendbus.testing import PythonPeer, call_envelope, serve_http

pytestmark = pytest.mark.anyio
DOCS_IMAGE = Path(__file__).parents[1] / "docs" / "images" / "status-page.png"
TOKENS = {"tok-alice": "alice", "tok-bob": "bob", "tok-alice-peer": {"user": "alice", "role": "peer"},
          "tok-ops": {"user": "ops", "role": "operator"}}


async def chromium(*args: str) -> str:
    """Run headless chromium (it must not block the event loop that serves the page)."""
    binary = shutil.which("chromium")
    assert binary, "chromium is not installed: run bash scripts/bootstrap.sh"
    proc = await asyncio.create_subprocess_exec(
        binary, "--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--virtual-time-budget=4000",
        *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
    out, _ = await asyncio.wait_for(proc.communicate(), 90)
    assert proc.returncode == 0
    return out.decode()


async def test_each_token_sees_its_own_bus(blendbus_server, tmp_path):
    async with serve_http(blendbus_server, tokens=TOKENS) as url:
        base = url.rsplit("/mcp", 1)[0]
        async with PythonPeer(lambda: connect(url, "tok-alice"), uuid="alice-studio"), \
                PythonPeer(lambda: connect(url, "tok-bob"), uuid="bob-laptop"):
            async with connect(url, "tok-alice") as alice, connect(url, "tok-bob") as bob:
                assert (await call_envelope(alice, "blender_test_image"))["status"] == "completed"
                await call_envelope(alice, "blender_test_echo", {"value": "hello"})
                await call_envelope(bob, "blender_test_fail", {"message": "bob's own"})
            page = await chromium("--dump-dom", f"{base}/#token=tok-alice")
            assert "Bus of alice" in page and "alice-studio" in page and "bob-laptop" not in page
            assert "test_image" in page and "test_echo" in page and "test_fail" not in page
            assert 'class="thumb"' in page and "data:image/png;base64," in page
            assert "This server needs a token." in await chromium("--dump-dom", f"{base}/")
            shot = tmp_path / "status.png"
            await chromium(f"--screenshot={shot}", "--window-size=1100,520", f"{base}/#token=tok-alice")
            assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
            if os.environ.get("BLENDBUS_UPDATE_DOCS"):
                DOCS_IMAGE.write_bytes(shot.read_bytes())
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
            page = await chromium("--dump-dom", f"{base}/#token=tok-ops")
            assert "Bus of alice" in page and '<option value="bob">bob</option>' in page and "operator view" in page
            async with connect(url, "tok-ops") as ops:  # an operator looks; it does not drive Blender
                refused = await ops.call_tool("blender_list_clients", {})
                assert refused.is_error and "needs a token with the llm role" in refused.structured_content["error"]


async def test_without_tokens_loopback_shows_user_local(blendbus_server):
    async with serve_http(blendbus_server) as url:
        base = url.rsplit("/mcp", 1)[0]
        async with PythonPeer(lambda: connect(url), uuid="local-peer"):
            page = await chromium("--dump-dom", f"{base}/")
    assert "Bus of local" in page and "local-peer" in page and "No job yet." in page
