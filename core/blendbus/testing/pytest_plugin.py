"""pytest fixtures for blendbus and its plugin authors (registered through the `pytest11` entry point).

Each test gets fresh state: plugins are loaded anew (nothing registered globally), the job store
lives in the test's tmp_path.

- `blendbus_plugins`: the installed plugins plus `blendbus_extra_plugins`, loaded for this test.
- `blendbus_server`: an in-process server on them.
- `blendbus_client`: an MCP client session to it (in-memory).
- `blendbus_peer_factory`: start Python test peers (the addon's own transport, no Blender) on it.
- `blendbus_bpy_client`: an MCP client over HTTP to the server with a real Blender peer (bpy
  module) that runs the plugins' handlers; preferences from `blendbus_peer_settings`.
- `blendbus_call`: `await blendbus_call(client, tool, arguments)` returns the tool's envelope.
- `blendbus_redis`: the URL of a real Redis backend with a key prefix of this test's own, removed
  afterwards (`redis://.../0?prefix=...`; testing/redis.py starts redis-server when none answers).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ..limits import Limits
from ..plugins import PluginSet, load_plugins
from ..server import BlendbusServer


@pytest.fixture(scope="session")
def blendbus_redis_server() -> Iterator[str]:
    from .redis import redis_server

    with redis_server() as url:
        yield url


@pytest.fixture
def blendbus_redis(blendbus_redis_server: str) -> Iterator[str]:
    from .redis import fresh_prefix, remove_prefix, with_prefix

    prefix = fresh_prefix()
    yield with_prefix(blendbus_redis_server, prefix)
    remove_prefix(blendbus_redis_server, prefix)


@pytest.fixture(scope="session")
def blendbus_redis_cluster_group() -> Iterator[Any]:
    """A Redis Cluster of three masters started for the session (testing/redis.py `ClusterGroup`)."""
    from .redis import cluster_group

    with cluster_group() as group:
        yield group


@pytest.fixture
def blendbus_redis_cluster(blendbus_redis_cluster_group: Any) -> Iterator[str]:
    """A `redis+cluster://` backend URL with a key prefix of its own, removed afterwards."""
    from .redis import fresh_prefix, remove_prefix, with_prefix

    prefix = fresh_prefix()
    yield with_prefix(blendbus_redis_cluster_group.url, prefix)
    remove_prefix(blendbus_redis_cluster_group.url, prefix)


@pytest.fixture
def blendbus_extra_plugins() -> list[tuple[str, object]]:
    """Override to register plugin objects that are not installed: [(name, module), ...]."""
    return []


@pytest.fixture
def blendbus_limits() -> Limits:
    """Override to change limits; the default shortens peer liveness to keep tests quick."""
    return Limits(peer_grace_s=1.5, poll_wait_s=5.0)


@pytest.fixture
def blendbus_peer_settings() -> list[str]:
    """Override with "key=value" preferences for the real Blender peer (e.g. "hello.enabled=true")."""
    return []


@pytest.fixture
def blendbus_plugins(blendbus_extra_plugins: list[tuple[str, object]]) -> PluginSet:
    return load_plugins(extra=blendbus_extra_plugins)


@pytest.fixture
def blendbus_server(tmp_path: Path, blendbus_plugins: PluginSet, blendbus_limits: Limits) -> BlendbusServer:
    from ..backends import open_backend
    from ..dispatch import Hub

    backend = open_backend("sqlite", state_dir=tmp_path / "blendbus-state", grace_s=blendbus_limits.peer_grace_s)
    return BlendbusServer(blendbus_plugins, Hub(backend, blendbus_limits))


@pytest.fixture
async def blendbus_peer_factory(blendbus_server: BlendbusServer) -> AsyncIterator[Callable[..., Awaitable[Any]]]:
    from .kit import in_memory
    from .peer import PythonPeer

    peers: list[PythonPeer] = []

    async def start(**kw: Any) -> PythonPeer:
        mode = kw.pop("mode", "auto")
        kw.setdefault("plugins", blendbus_server.plugins)  # the test peer holds what the server declares
        peer = await PythonPeer(in_memory(blendbus_server, mode), **kw).start()
        peers.append(peer)
        return peer

    yield start
    for peer in peers:
        await peer.kill()


@pytest.fixture
async def blendbus_client(blendbus_server: BlendbusServer) -> AsyncIterator[Any]:
    from mcp import Client

    async with Client(blendbus_server.mcp) as client:
        yield client


@pytest.fixture
async def blendbus_bpy_url(blendbus_server: BlendbusServer, tmp_path: Path,
                           blendbus_peer_settings: list[str]) -> AsyncIterator[str]:
    """The MCP URL of `blendbus_server` served over HTTP, with a real Blender peer joined."""
    import importlib.util

    if importlib.util.find_spec("bpy") is None:
        pytest.skip("bpy (Blender as a Python module) is not installed: pip install 'blendbus[peer]'")
    from .blender import blender_peer
    from .kit import serve_http

    async with serve_http(blendbus_server) as url:
        async with blender_peer(blendbus_server, url, tmp_path, *blendbus_peer_settings):
            yield url


@pytest.fixture
async def blendbus_bpy_client(blendbus_bpy_url: str) -> AsyncIterator[Any]:
    """An MCP client of `blendbus_bpy_url`."""
    from ..client import connect

    async with connect(blendbus_bpy_url) as client:
        yield client


@pytest.fixture
def blendbus_call() -> Callable[..., Awaitable[dict[str, Any]]]:
    from .kit import call_envelope

    return call_envelope
