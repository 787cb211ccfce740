"""pytest fixtures for blendbus and plugin authors (registered through the `pytest11` entry point).

- `blendbus_server`: an in-process server with the installed plugins (and `blendbus_extra_plugins`).
- `blendbus_peer_factory`: start Python test peers connected to it in-memory.
- `blendbus_client`: an MCP client session to it; `call_envelope` returns a tool's envelope.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from ..dispatch import Limits
from ..server import BlendbusServer


@pytest.fixture
def blendbus_extra_plugins() -> list[tuple[str, object]]:
    """Override to register plugin objects that are not installed: [(name, module), ...]."""
    return []


@pytest.fixture
def blendbus_limits() -> Limits:
    """Override to tighten limits; the default shortens peer liveness to keep tests quick."""
    return Limits(peer_grace_s=1.5, poll_wait_s=5.0)


@pytest.fixture
def blendbus_server(tmp_path: Path, blendbus_extra_plugins: list[tuple[str, object]],
                    blendbus_limits: Limits) -> BlendbusServer:
    from .kit import make_server

    return make_server(blendbus_extra_plugins, state_dir=tmp_path / "state", limits=blendbus_limits)


@pytest.fixture
async def blendbus_peer_factory(blendbus_server: BlendbusServer) -> AsyncIterator[Any]:
    from .kit import in_memory
    from .peer import PythonPeer

    peers: list[PythonPeer] = []

    async def start(**kw: Any) -> PythonPeer:
        mode = kw.pop("mode", "auto")
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
