"""The official TypeScript SDK client against blendbus: most MCP hosts are not Python.

tests/node/clients.mjs runs a scenario with @modelcontextprotocol/sdk (pinned in
tests/node/package-lock.json, installed by scripts/bootstrap.sh) and prints what it saw as JSON.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest

from blendbus.client import connect
from blendbus.testing import PythonPeer, serve_http
from blendbus.testing.blender import needs_bpy

pytestmark = pytest.mark.anyio
NODE_DIR = Path(__file__).parent / "node"
MIB = 1024 * 1024
STDIO_LINE_LIMIT = 10 * MIB
"""The TypeScript SDK's stdio transport closes the connection on a longer message."""


async def run_node(scenario: str, *args: str, timeout: float = 240) -> dict[str, Any]:
    node = shutil.which("node")
    assert node and (NODE_DIR / "node_modules" / "@modelcontextprotocol" / "sdk").is_dir(), \
        "the TypeScript client is not installed: run bash scripts/bootstrap.sh"
    proc = await asyncio.create_subprocess_exec(node, str(NODE_DIR / "clients.mjs"), scenario, *args,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), timeout)
    assert proc.returncode == 0, err.decode()[-4000:]
    return json.loads(out.decode().strip().splitlines()[-1])


@needs_bpy
async def test_a_large_result_does_not_kill_a_stdio_client(tmp_path):
    """A 6 MiB script output, once a 12+ MiB message that closed the TypeScript client's stdio
    transport: now the first page, then the rest through blender_get_job, and the session lives on.
    The calls start while the embedded Blender is still starting: they wait for it."""
    server = [sys.executable, "-m", "blendbus", "serve", "--stdio", "--port", "0", "--state-dir",
              str(tmp_path / "state"), "--embedded-blender"]
    seen = await run_node("stdio-large-result", json.dumps(server), str(6 * MIB))
    assert seen["status"] == "completed" and seen["truncated"] is True and seen["still_connected"] is True
    assert seen["reassembled"] == seen["result_bytes"] >= 6 * MIB and seen["pages"] > 1
    assert seen["largest_message"] < MIB < STDIO_LINE_LIMIT


async def test_a_large_result_reaches_an_http_client(blendbus_server):
    async with serve_http(blendbus_server) as url:
        async with PythonPeer(lambda: connect(url)):
            seen = await run_node("http-large-result", url, str(3 * MIB))
    assert seen["status"] == "completed" and seen["truncated"] is True and seen["still_connected"] is True
    assert seen["reassembled"] == seen["result_bytes"] >= 3 * MIB and seen["largest_message"] < MIB
