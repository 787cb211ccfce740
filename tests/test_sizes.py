"""Large results end to end: peer -> server -> MCP client, over real HTTP."""

from __future__ import annotations

import json

import pytest

from blendbus import protocol as p
from blendbus.client import connect
from blendbus.testing import PythonPeer, call_envelope, serve_http

pytestmark = pytest.mark.anyio
MB = 1024 * 1024


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_a_64_mb_result_arrives_whole(blendbus_server, mode):
    size = 64 * MB - 1024  # the cap is on the JSON-encoded result: a string adds its two quotes
    async with serve_http(blendbus_server) as url:
        async with PythonPeer(lambda: connect(url, mode=mode)):
            async with connect(url, mode=mode) as client:
                env = await call_envelope(client, "blender_test_size", {"nbytes": size, "timeout_s": 120})
                assert env["status"] == p.COMPLETED and len(env["result"]) == size
                over = await call_envelope(client, "blender_test_size", {"nbytes": 64 * MB + 1})
                assert over["status"] == p.FAILED and "above this peer's cap" in over["error"]


@pytest.mark.parametrize("cap", [None, 4096])
async def test_a_large_result_is_repeated_as_text_unless_the_server_is_told_otherwise(blendbus_server, cap):
    blendbus_server.hub.limits.text_result_max_bytes = cap
    async with serve_http(blendbus_server) as url:
        async with PythonPeer(lambda: connect(url)), connect(url) as client:
            for size, repeated in ((100, True), (5000, cap is None)):
                result = await client.call_tool("blender_test_size", {"nbytes": size})
                assert len(result.structured_content["result"]) == size  # always whole in structuredContent
                text = json.loads(result.content[0].text)
                assert text["status"] == p.COMPLETED and text["job_id"] == result.structured_content["job_id"]
                if repeated:
                    assert text == result.structured_content
                else:
                    assert text["result"] == "(over 4096 bytes: only in structuredContent)"
