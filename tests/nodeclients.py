"""Running the official TypeScript MCP SDK client (tests/node/clients.mjs, pinned in
tests/node/package-lock.json, installed by scripts/test-prereqs.sh) from the tests."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path
from typing import Any

NODE_DIR = Path(__file__).parent / "node"


async def run_node(scenario: str, *args: str, timeout: float = 240) -> dict[str, Any]:
    """One scenario of clients.mjs; what it printed, as JSON (AssertionError with its stderr if it failed)."""
    node = shutil.which("node")
    assert node and (NODE_DIR / "node_modules" / "@modelcontextprotocol" / "sdk").is_dir(), \
        "the TypeScript client is not installed: run bash scripts/test-prereqs.sh"
    proc = await asyncio.create_subprocess_exec(node, str(NODE_DIR / "clients.mjs"), scenario, *args,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), timeout)
    assert proc.returncode == 0, err.decode()[-4000:]
    return json.loads(out.decode().strip().splitlines()[-1])
