"""Every kind of MCP content in a tool result, through one convention: a handler's `_content` blocks
(and `_images`, their image-only spelling) reach real clients as image, audio, embedded-resource and
resource-link content, in order, in both protocol eras; a malformed block fails its job clearly."""

from __future__ import annotations

import base64

import pytest

from blendbus import protocol as p
from blendbus.client import connect
from blendbus.testing import PythonPeer, call_envelope, serve_http
from tests.nodeclients import run_node

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_a_result_carries_every_kind_of_content(blendbus_server, mode):
    async with serve_http(blendbus_server) as url, PythonPeer(lambda: connect(url)), \
            connect(url, mode=mode) as client:
        result = await client.call_tool("blender_test_content", {})
        broken = await call_envelope(client, "blender_test_content", {"broken": True})
    kinds = [block.type for block in result.content]
    assert kinds == ["text", "image", "audio", "resource", "resource", "resource_link"]
    _, image, audio, text, blob, link = result.content
    assert base64.b64decode(image.data).startswith(b"\x89PNG") and image.mime_type == "image/png"
    assert base64.b64decode(audio.data)[:4] == b"RIFF" and audio.mime_type == "audio/wav"
    assert text.resource.text == '{"name": "Cube"}' and str(text.resource.uri) == "blender://scene/object/Cube"
    assert base64.b64decode(blob.resource.blob) == b"\x00\x01\x02"
    assert link.name == "scene" and str(link.uri) == "blender://scene" and link.description == "The whole scene"
    structured = result.structured_content["result"]
    assert structured == {"note": "every kind of content"}  # the blocks travel as content only
    assert broken["status"] == p.FAILED and "_content[0]" in broken["error"] and "base64" in broken["error"]


async def test_the_typescript_client_takes_every_kind_of_content(blendbus_server):
    async with serve_http(blendbus_server) as url, PythonPeer(lambda: connect(url)):
        seen = await run_node("http-content", url, "0")
    assert seen["kinds"] == ["text", "image", "audio", "resource", "resource", "resource_link"]
    assert seen["mimes"][1:] == ["image/png", "audio/wav", "application/json", "application/octet-stream",
                                 "application/json"]
    assert seen["link"]["uri"] == "blender://scene" and seen["link"]["name"] == "scene"
