"""Errors as the MCP spec shows them: an unknown tool is a JSON-RPC -32602, a resource that is not
there is -32002 with one line and no traceback, and the server's own page may call it."""

from __future__ import annotations

import pytest
from mcp.shared.exceptions import MCPError

from blendbus.client import connect, root_cause
from blendbus.testing import serve_http
from blendbus.testing.blender import blender_peer, needs_bpy

pytestmark = pytest.mark.anyio


async def test_an_unknown_tool_is_a_json_rpc_error_that_names_the_one_meant(blendbus_server):
    async with serve_http(blendbus_server) as url, connect(url) as client:
        with pytest.raises(Exception) as raised:
            await client.call_tool("blender_get_scene_inf", {})
        error = root_cause(raised.value)
        assert isinstance(error, MCPError) and error.code == -32602
        assert "did you mean 'blender_get_scene_info'" in error.message


@needs_bpy
async def test_a_missing_object_is_a_missing_resource_in_one_line(blendbus_server, tmp_path):
    async with serve_http(blendbus_server) as url, blender_peer(blendbus_server, url, tmp_path), \
            connect(url) as client:
        with pytest.raises(Exception) as raised:
            await client.read_resource("blender://scene/object/NoSuchThing")
        error = root_cause(raised.value)
        assert isinstance(error, MCPError) and error.code == -32002
        assert "NoSuchThing" in error.message and "\n" not in error.message and "Traceback" not in error.message
        assert (await client.read_resource("blender://scene/object/Cube")).contents[0].text.startswith("{")


async def test_one_bad_update_in_a_batch_is_answered_and_the_rest_land(blendbus_server):
    """A batch refused whole would be posted again and again by the peer's outbox."""
    from blendbus import protocol as p
    from blendbus.client import call
    from blendbus.testing import call_envelope

    async with serve_http(blendbus_server) as url, connect(url) as peer, connect(url) as llm:
        token = (await call(peer, "blender_register_client", {"client_uuid": "raw"}))["peer_token"]
        me = {"client_uuid": "raw", "peer_token": token}
        sent = await call_envelope(llm, "blender_send_message", {
            "payload": {"message_type": p.COMMAND_DISPATCH, "command": "test_echo", "params": {"value": 1}},
            "wait": False})
        taken = await call(peer, "blender_poll_jobs", {**me, "wait_s": 5})
        assert [x["job_id"] for x in taken["payloads"]] == [sent["job_id"]]
        answers = (await call(peer, "blender_job_updates", {**me, "updates": [
            {"job_id": "whatever", "status": "bogus", "scene": {"revision": "x"}},
            {"job_id": sent["job_id"], "status": p.COMPLETED, "result": {"echo": 1}}]}))["answers"]
        assert answers[0]["code"] == p.INVALID and "status" in answers[0]["error"]
        assert answers[1] == {"job_id": sent["job_id"], "accepted": True, "status": p.COMPLETED}
        assert (await call_envelope(llm, "blender_get_job", {"job_id": sent["job_id"]}))["result"] == {"echo": 1}
