"""Tests with blendbus's pytest fixtures: an in-process server, the Python test peer, real Blender."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def blendbus_peer_settings() -> list[str]:
    return ["hello.enabled=true"]


def test_the_plugin_loads(blendbus_plugins):
    info = next(p for p in blendbus_plugins.plugins if p.name == "hello")
    assert info.error is None and "hello_greet" in blendbus_plugins.commands


async def test_the_gate_is_closed_by_default(blendbus_peer_factory, blendbus_client, blendbus_call):
    await blendbus_peer_factory()
    env = await blendbus_call(blendbus_client, "blender_hello_greet", {"name": "Ada"})
    assert env["status"] == "failed" and "hello.enabled" in env["error"]


async def test_bad_arguments_are_refused(blendbus_client, blendbus_call):
    env = await blendbus_call(blendbus_client, "blender_hello_greet", {"name": ""})
    assert env["status"] == "invalid" and "name" in env["error"]


async def test_greets_from_real_blender(blendbus_bpy_client, blendbus_call):
    env = await blendbus_call(blendbus_bpy_client, "blender_hello_greet", {"name": "Ada"})
    assert env["status"] == "completed", env
    assert env["result"]["greeting"] == "hello Ada" and env["result"]["objects"] == 3
