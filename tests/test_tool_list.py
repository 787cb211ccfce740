"""The tool list an LLM pays for: small by default, peers' tools hidden, profiles that narrow what a
server or a token offers, and the three meta-tools of `--tools compact`, all over real HTTP."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from blendbus import listing, meta_tools
from blendbus import protocol as p
from blendbus.auth import ROLES
from blendbus.client import ToolError, call, connect
from blendbus.testing import PythonPeer, call_envelope, make_server, serve_http
from blendbus.testing.kit import BUNDLED


pytestmark = pytest.mark.anyio
PEER_TOOLS = set(p.PEER_TOOLS)
LLM_ONLY = {"llm-tok": {"user": "u", "role": "llm"}, "peer-tok": {"user": "u", "role": "peer"}}


def bundled_list(profile: str = "all") -> list:
    server = make_server(env={"BLENDBUS_LOAD_PLUGINS": BUNDLED})
    return server.tools.listed(frozenset(ROLES), server.tools.profile(profile), apps=False)


def test_the_peers_tools_are_spelled_once_and_documented():
    server = make_server()
    assert {name for name, tool in server.tools.builtin.items() if tool.role == "peer"} == PEER_TOOLS
    documented = (Path(__file__).parents[1] / "docs" / "peer-protocol.md").read_text()
    assert [name for name in p.PEER_TOOLS if f"`{name}" not in documented] == []


def test_the_bundled_list_is_under_6000_tokens():
    tools = bundled_list()
    assert not PEER_TOOLS & {t.name for t in tools}
    assert listing.tokens(listing.wire_bytes(tools)) < 6000


def test_every_bundled_tool_keeps_to_its_budget():
    """A description or schema that grows past the budget fails here: trim it, or say in the
    server's instructions what many tools share."""
    over = {t.name: len(listing.wire_json(t)) for t in bundled_list()
            if len(listing.wire_json(t)) > listing.TOOL_BUDGET_BYTES}
    assert not over, f"over {listing.TOOL_BUDGET_BYTES} bytes each: {over}"


def test_lean_schemas_drop_only_what_tells_a_model_nothing():
    schema = {"type": "object", "title": "Args", "additionalProperties": False, "properties": {
        "title": {"type": "string", "title": "Title", "maxLength": 63, "description": "A property named title"},
        "size": {"anyOf": [{"type": "integer", "minimum": 1}, {"type": "null"}], "default": None, "title": "Size"},
        "mode": {"anyOf": [{"type": "string"}, {"type": "null"}], "default": "fast"},
    }}
    assert listing.lean(schema) == {"type": "object", "properties": {
        "title": {"type": "string", "description": "A property named title"},
        "size": {"type": "integer", "minimum": 1},
        "mode": {"anyOf": [{"type": "string"}, {"type": "null"}], "default": "fast"},
    }}


def test_listed_lean_validated_whole(blendbus_server):
    """An explicit null for an optional argument is accepted as before, and a guard the list leaves
    out still refuses, by name."""
    error = blendbus_server.tools.validate("blender_get_viewport_screenshot", {"filepath": None})
    assert error is None
    listed = blendbus_server.tools.listed(frozenset(ROLES), blendbus_server.tools.toolset, apps=False)
    assert "maxLength" not in "".join(listing.wire_json(t) for t in listed)
    assert "argument 'filepath'" in blendbus_server.tools.validate("blender_get_viewport_screenshot", {"filepath": "x" * 5000})


async def test_peer_tools_are_listed_to_peers_only_and_still_work(blendbus_server):
    async with serve_http(blendbus_server, tokens={**LLM_ONLY, "both-tok": "u"}) as url:
        async with PythonPeer(lambda: connect(url, "peer-tok"), uuid="p1"):  # registers, polls, replies
            async with connect(url, "llm-tok") as llm, connect(url, "peer-tok") as peer, \
                    connect(url, "both-tok") as both:
                for client in (llm, both):
                    names = {t.name for t in (await client.list_tools()).tools}
                    assert "blender_test_echo" in names and not PEER_TOOLS & names
                assert {t.name for t in (await peer.list_tools()).tools} == PEER_TOOLS
                assert (await call_envelope(llm, "blender_test_echo", {"value": 1}))["result"] == {"echo": 1}
    async with serve_http(blendbus_server) as url:  # no tokens: the local user has every role
        async with PythonPeer(lambda: connect(url), uuid="p2"), connect(url) as client:
            assert not PEER_TOOLS & {t.name for t in (await client.list_tools()).tools}
            assert (await call_envelope(client, "blender_test_echo", {"value": 2}))["result"] == {"echo": 2}


async def test_a_declared_result_is_the_only_output_schema(blendbus_server, blendbus_peer_factory):
    await blendbus_peer_factory()
    async with serve_http(blendbus_server) as url, connect(url) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        assert tools["blender_test_count"].output_schema["properties"]["result"]["anyOf"][0]["required"] == [
            "characters", "words"]
        assert tools["blender_test_echo"].output_schema is None
        # The SDK client validates structuredContent against the outputSchema it listed.
        env = await call_envelope(client, "blender_test_count", {"text": "two words"})
        assert env["result"] == {"characters": 9, "words": 2}


async def test_a_server_profile_lists_and_admits_only_its_tools(tmp_path, blendbus_extra_plugins):
    server = make_server(blendbus_extra_plugins, state_dir=tmp_path, tools="testing,blender_list_clients")
    async with serve_http(server) as url, PythonPeer(lambda: connect(url), uuid="p1"), connect(url) as client:
        names = {t.name for t in (await client.list_tools()).tools}
        assert "blender_test_echo" in names and "blender_get_job" in names  # the bus's own are in every profile
        assert "blender_execute_code" not in names and "blender_send_message" not in names
        with pytest.raises(ToolError, match="not in your tools profile"):
            await call(client, "blender_execute_code", {"code": "print(1)"})
        assert (await call_envelope(client, "blender_test_echo", {"value": 3}))["status"] == "completed"


async def test_a_tokens_profile_narrows_the_servers(blendbus_server):
    tokens = {"artist": {"user": "u", "tools": "blender_test_echo"}, "lead": "u"}
    async with serve_http(blendbus_server, tokens=tokens) as url:
        async with PythonPeer(lambda: connect(url, "lead"), uuid="p1"):
            async with connect(url, "artist") as artist, connect(url, "lead") as lead:
                assert {t.name for t in (await artist.list_tools()).tools} == {
                    "blender_test_echo", "blender_get_job", "blender_cancel_job", "blender_list_clients",
                    "blender_watch_bus"}
                with pytest.raises(ToolError, match="not in your tools profile"):
                    await call(artist, "blender_execute_code", {"code": "print(1)"})
                with pytest.raises(ToolError, match="not in your tools profile"):  # nor as a raw payload
                    await call(artist, "blender_send_message", {"payload": {
                        "message_type": "command_dispatch", "command": "test_sleep", "params": {"seconds": 0}}})
                assert "blender_execute_code" in {t.name for t in (await lead.list_tools()).tools}
                assert (await call_envelope(artist, "blender_test_echo", {"value": 4}))["result"] == {"echo": 4}


async def test_compact_lists_three_tools_that_reach_the_rest_with_every_check(blendbus_server):
    tokens = {"compact": {"user": "u", "role": "llm", "tools": "compact,testing"}, **LLM_ONLY}
    async with serve_http(blendbus_server, tokens=tokens) as url:
        async with PythonPeer(lambda: connect(url, "peer-tok"), uuid="p1"), connect(url, "compact") as client:
            assert [t.name for t in (await client.list_tools()).tools] == list(meta_tools.NAMES)
            found = await call(client, meta_tools.FIND, {"query": "count words"})
            assert found["tools"][0]["name"] == "blender_test_count"
            described = await call(client, meta_tools.DESCRIBE, {"name": "blender_test_count"})
            assert described["inputSchema"]["required"] == ["text"]
            env = await call_envelope(client, meta_tools.CALL, {"name": "blender_test_count",
                                                                "arguments": {"text": "a b c"}})
            assert env["status"] == "completed" and env["result"] == {"characters": 5, "words": 3}
            bad = await call_envelope(client, meta_tools.CALL, {"name": "blender_test_count", "arguments": {}})
            assert bad["status"] == "invalid" and "text" in bad["error"]
            with pytest.raises(ToolError, match="not in your tools profile"):
                await call(client, meta_tools.CALL, {"name": "blender_execute_code", "arguments": {"code": "1"}})
            with pytest.raises(ToolError, match="needs a token with the peer role"):
                await call(client, meta_tools.CALL, {"name": "blender_register_client",
                                                     "arguments": {"client_uuid": "sneaky"}})
            with pytest.raises(ToolError, match="unknown tool"):
                await call(client, meta_tools.DESCRIBE, {"name": "blender_execute_code"})
            assert "blender_execute_code" not in json.dumps(await call(client, meta_tools.FIND, {"query": ""}))


async def test_every_envelope_is_the_one_the_instructions_describe(blendbus_server):
    """The envelope is declared once (protocol.ENVELOPE_SCHEMA, in the server's instructions): every
    dispatch result, whatever its status, fits it."""
    import jsonschema

    async with serve_http(blendbus_server) as url, PythonPeer(lambda: connect(url), uuid="p1"), connect(url) as client:
        envelopes = [await call_envelope(client, "blender_test_echo", {"value": [1, {"a": None}]}),
                     await call_envelope(client, "blender_test_fail", {"message": "no"}),
                     await call_envelope(client, "blender_test_count", {"text": "a b"}),
                     await call_envelope(client, "blender_test_echo", {"value": 1, p.EXPECT_REVISION: 99}),
                     await call_envelope(client, "blender_test_echo", {}),
                     await call_envelope(client, "blender_get_job", {"job_id": "nope"})]
    assert {e["status"] for e in envelopes} >= {p.COMPLETED, p.FAILED, p.CONFLICT, p.INVALID}
    for env in envelopes:
        jsonschema.validate(env, p.ENVELOPE_SCHEMA)


async def test_lists_say_how_long_they_stay_fresh(blendbus_server):
    async with serve_http(blendbus_server) as url, connect(url) as client:
        listed = await client.list_tools()
        assert listed.ttl_ms > 0 and listed.cache_scope == "private"


@pytest.mark.parametrize("profile, error", [("polyhven", "did you mean 'polyhaven'"), ("/no/such/file", "no file")])
def test_a_bad_profile_stops_serve_with_the_reason(tmp_path, profile, error):
    out = subprocess.run([sys.executable, "-m", "blendbus", "serve", "--port", "0", "--state-dir", str(tmp_path),
                          "--tools", profile], capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and error in out.stderr


def test_a_profile_file_and_the_cli_figure(tmp_path):
    profile = tmp_path / "artist.txt"
    profile.write_text("# what the artist's assistant gets\nscene\nblender_download_polyhaven_asset, polypizza\n")
    out = subprocess.run([sys.executable, "-m", "blendbus", "tools", "--tools", str(profile)], capture_output=True,
                         text=True, timeout=120, check=True, env={**os.environ, "BLENDBUS_LOAD_PLUGINS": BUNDLED})
    assert "blender_download_polyhaven_asset" in out.stdout and "blender_search_polyhaven_assets" not in out.stdout
    assert "blender_search_polypizza_models" in out.stdout and "tokens" in out.stderr


@pytest.mark.parametrize("profile", ["all", "compact,testing"])
async def test_the_typescript_client_lists_and_validates(tmp_path, blendbus_extra_plugins, profile):
    """The official TypeScript client checks a declared result against the listed outputSchema, and
    reaches the same tool through blender_call_tool when only the meta-tools are listed."""
    from .nodeclients import run_node

    server = make_server(blendbus_extra_plugins, state_dir=tmp_path, tools=profile)
    async with serve_http(server) as url, PythonPeer(lambda: connect(url), uuid="p1"):
        seen = await run_node("http-tools", url)
    assert seen["result"] == {"characters": 17, "words": 3} and not seen["is_error"]
    assert not PEER_TOOLS & set(seen["names"])
    if profile == "all":
        assert seen["output_schema"]["properties"]["result"]["anyOf"][0]["required"] == ["characters", "words"]
    else:
        assert seen["names"] == list(meta_tools.NAMES)
