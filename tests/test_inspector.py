"""The official MCP Inspector's CLI (`@modelcontextprotocol/inspector`, pinned in tests/node, on the
Node 22 it needs): the published tool schemas pass its `--strict` portability check, for a plain
client and for one that speaks MCP Apps."""

from __future__ import annotations

import asyncio
import json

import pytest

from blendbus.testing import make_server, serve_http
from tests.nodeclients import NODE_DIR
from tests.openid import NODE22

pytestmark = pytest.mark.anyio


async def inspect(url: str, *options: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        str(NODE22), str(NODE_DIR / "node_modules" / ".bin" / "mcp-inspector"), "--cli", url, *options,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    return proc.returncode or 0, out.decode(), err.decode()


@pytest.mark.parametrize("apps", [False, True])
async def test_the_tool_schemas_pass_the_inspectors_strict_check(tmp_path, apps):
    """The installed plugins' tools (every bundled plugin), as a user's server lists them."""
    assert (NODE_DIR / "node_modules" / ".bin" / "mcp-inspector").exists(), "run bash scripts/test-prereqs.sh"
    async with serve_http(make_server(state_dir=tmp_path)) as url:
        code, out, err = await inspect(url, "--method", "tools/list", "--strict", *(["--advertise-apps"] if apps else []))
    assert code == 0 and err.strip() == "", err[-3000:]
    names = {tool["name"] for tool in json.loads(out)["tools"]}
    assert "blender_execute_code" in names and ("blender_pick_object" in names) == apps
