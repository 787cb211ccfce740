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
