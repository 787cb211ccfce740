"""One server and one Blender for each test module, instead of one per test (a Blender takes about
2 s to start): `shared_bpy_url` and `shared_bpy_client` are the module's, with Blender's default scene
read again before each test (`wm.read_homefile`, which keeps the peer's handlers and preferences).

A test that follows the scene's change notifications uses blendbus's own `blendbus_bpy_client`, a
Blender of its own: the reread scene's notification, sent after a short debounce, could reach it."""

from __future__ import annotations

import importlib.util
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from blendbus import protocol as p
from blendbus.client import connect
from blendbus.testing import call_envelope, make_server, serve_http
from blendbus.testing.blender import blender_peer

DEFAULT_SCENE = "import bpy\nbpy.ops.wm.read_homefile(use_empty=False)"


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"  # module-wide, so the module's Blender and its tests share one event loop


@pytest.fixture(scope="module")
def blendbus_peer_settings() -> list[str]:
    return ["allow_code_execution=true"]


@pytest.fixture(scope="module")
async def module_blender(tmp_path_factory: pytest.TempPathFactory,
                         blendbus_peer_settings: list[str]) -> AsyncIterator[str]:
    """The MCP URL of this module's server, with its Blender peer joined."""
    if importlib.util.find_spec("bpy") is None:
        pytest.skip("bpy (Blender as a Python module) is not installed: pip install 'blendbus[peer]'")
    tmp: Path = tmp_path_factory.mktemp("blender")
    server = make_server(state_dir=tmp / "state")
    async with serve_http(server) as url, blender_peer(server, url, tmp, *blendbus_peer_settings):
        yield url


@pytest.fixture
async def shared_bpy_url(module_blender: str) -> AsyncIterator[str]:
    """The module's server and Blender, its scene read afresh."""
    async with connect(module_blender) as client:
        env = await call_envelope(client, "blender_execute_code", {"code": DEFAULT_SCENE})
    assert env["status"] == p.COMPLETED, env
    yield module_blender


@pytest.fixture
async def shared_bpy_client(shared_bpy_url: str) -> AsyncIterator[Any]:
    """An MCP client of `shared_bpy_url`."""
    async with connect(shared_bpy_url) as client:
        yield client
