"""Who can call what: tokens stored as hashes, roles that limit them, 401 with nothing leaked."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys

import httpx2
import pytest

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
