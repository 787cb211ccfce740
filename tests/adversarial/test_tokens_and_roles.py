"""Who can call what: tokens stored as hashes, roles that limit them, 401 with nothing leaked."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys

import httpx2
import pytest
from mcp.shared.exceptions import MCPError

from blendbus.auth import hash_token
from blendbus.client import ToolError, call, connect
from blendbus.testing import PythonPeer, call_envelope, serve_http

pytestmark = pytest.mark.anyio


def test_token_new_stores_only_a_hash(tmp_path):
    path = tmp_path / "tokens.json"
    out = subprocess.run([sys.executable, "-m", "blendbus", "token", "new", "alice", "--role", "peer",
                          "--tokens", str(path)], capture_output=True, text=True, timeout=60, check=True)
    token = out.stdout.strip()
    assert token.startswith("bb_") and len(token) > 40
    text = path.read_text()
    assert token not in text and json.loads(text) == {f"sha256:{hash_token(token)}": {"user": "alice", "role": "peer"}}
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


async def test_roles_limit_what_a_token_can_call(blendbus_server):
    tokens = {"llm-tok": {"user": "u", "role": "llm"}, f"sha256:{hash_token('peer-tok')}": {"user": "u", "role": "peer"},
              "both-tok": "u"}
    async with serve_http(blendbus_server, tokens=tokens) as url:
        async with PythonPeer(lambda: connect(url, "peer-tok"), uuid="p1"):  # peer role: register, poll, reply
            async with connect(url, "llm-tok") as llm, connect(url, "peer-tok") as peer, connect(url, "both-tok") as both:
                assert (await call_envelope(llm, "blender_test_echo", {"value": 1}))["status"] == "completed"
                with pytest.raises(ToolError, match="needs a token with the peer role"):
                    await call(llm, "blender_register_client", {"client_uuid": "sneaky"})
                with pytest.raises(ToolError, match="needs a token with the llm role"):
                    await call(peer, "blender_execute_code", {"code": "print(1)"})
                with pytest.raises(ToolError, match="needs a token with the llm role"):
                    await call(peer, "blender_list_clients", {})
                assert (await call_envelope(both, "blender_list_clients"))["clients"][0]["client_uuid"] == "p1"


async def test_unknown_or_missing_tokens_get_a_bare_401(blendbus_server):
    async with serve_http(blendbus_server, tokens={"good": "u"}) as url:
        async with httpx2.AsyncClient() as http:
            for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic Z29vZA=="}):
                r = await http.post(url, headers={**headers, "Content-Type": "application/json",
                                                  "Accept": "application/json, text/event-stream"},
                                    content=b'{"jsonrpc":"2.0","id":1,"method":"tools/list"}')
                assert r.status_code == 401 and r.json() == {"error": "unauthorized"}


async def test_client_chosen_job_ids_are_per_user(blendbus_server):
    async with serve_http(blendbus_server, tokens={"a": "alice", "b": "bob"}) as url:
        async with PythonPeer(lambda: connect(url, "a")), PythonPeer(lambda: connect(url, "b")):
            async with connect(url, "a") as alice, connect(url, "b") as bob:
                script = {"message_type": "job_dispatch", "job_id": "mine", "script": "print('{}')"}
                a = await call_envelope(alice, "blender_send_message", {"payload": {**script, "script": "print('a')"}})
                b = await call_envelope(bob, "blender_send_message", {"payload": {**script, "script": "print('b')"}})
                assert (a["result"], b["result"]) == ("a\n", "b\n")
                assert (await call_envelope(alice, "blender_get_job", {"job_id": "mine"}))["result"] == "a\n"


async def test_roles_apply_to_every_method_not_only_tool_calls(blendbus_server):
    """Security round 2, #3: a peer-role token read blender://scene/* and so ran commands in Blender."""
    tokens = {"llm-tok": {"user": "u", "role": "llm"}, "peer-tok": {"user": "u", "role": "peer"}}
    async with serve_http(blendbus_server, tokens=tokens) as url:
        async with PythonPeer(lambda: connect(url, "peer-tok"), uuid="p1"), connect(url, "peer-tok") as peer:
            before = await blendbus_server.hub.jobs.usage("u")
            for uri in ("blender://scene/info", "blender://scene/object/Cube"):
                with pytest.raises(MCPError, match="resources/read needs a token with the llm role"):
                    await peer.read_resource(uri)
            assert await blendbus_server.hub.jobs.usage("u") == before  # nothing was dispatched
            assert [t.name for t in (await peer.list_tools()).tools]  # listing stays open to every role


async def test_a_live_peers_uuid_cannot_be_taken_over(blendbus_server):
    """Security round 2, #8: another peer-role token re-registered under a live uuid, took its jobs
    and forged its results."""
    tokens = {"peer-a": {"user": "u", "role": "peer"}, "peer-b": {"user": "u", "role": "peer"}, "llm": "u"}
    async with serve_http(blendbus_server, tokens=tokens) as url:
        async with PythonPeer(lambda: connect(url, "peer-a"), uuid="victim") as victim:
            async with connect(url, "peer-b") as thief, connect(url, "peer-a") as same_token:
                for client, instance in ((thief, victim.link.instance), (thief, "other"), (same_token, "other")):
                    with pytest.raises(ToolError, match="held by another live peer"):
                        await call(client, "blender_register_client", {"client_uuid": "victim", "instance": instance})
            async with connect(url, "llm") as llm:  # the victim still owns its jobs
                env = await call_envelope(llm, "blender_test_echo", {"value": "mine", "target_uuid": "victim"})
                assert env["status"] == "completed" and env["result"] == {"echo": "mine"}


def _initialize(session: str | None = None) -> bytes:
    return json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}).encode()


async def test_sessions_are_bound_to_their_user_and_capped_per_user(blendbus_extra_plugins, tmp_path):
    """Security round 2, #6: bob's sessions filled the server-wide cap (503 for alice), and bob's token
    with alice's session id ended her session."""
    from blendbus.dispatch import Limits
    from blendbus.testing import make_server

    server = make_server(blendbus_extra_plugins, limits=Limits(max_sessions_per_user=3))
    headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
    async with serve_http(server, tokens={"a": "alice", "b": "bob"}) as url:
        async with httpx2.AsyncClient(timeout=10) as http:
            async def open_session(token: str) -> httpx2.Response:
                return await http.post(url, headers={**headers, "Authorization": f"Bearer {token}"},
                                       content=_initialize())

            alice = (await open_session("a")).headers["mcp-session-id"]
            for _ in range(3):
                assert (await open_session("b")).status_code == 200
            refused = await open_session("b")
            assert refused.status_code == 503  # bob is at his own cap...
            assert (await open_session("a")).status_code == 200  # ...and alice is not locked out
            as_bob = {**headers, "Authorization": "Bearer b", "mcp-session-id": alice, "mcp-protocol-version": "2025-11-25"}
            assert (await http.delete(url, headers=as_bob)).status_code == 404
            ping = json.dumps({"jsonrpc": "2.0", "id": 2, "method": "ping"}).encode()
            assert (await http.post(url, headers=as_bob, content=ping)).status_code == 404
            as_alice = {**as_bob, "Authorization": "Bearer a"}
            assert (await http.post(url, headers=as_alice, content=ping)).status_code == 200  # still hers, still alive
            assert (await http.delete(url, headers=as_alice)).status_code == 200
