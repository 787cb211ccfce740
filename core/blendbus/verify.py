"""Verification in the same call (`verify: true`): a small picture of the scene right after a
scene-changing call, so an LLM can check its work without another round trip.

The picture is the scene plugin's `get_viewport_screenshot` on the peer that ran the call, at most
MAX_SIZE pixels on its longest side, sent back as MCP image content beside the call's own result;
the envelope's `verify` says what it shows and what it cost. Without the scene plugin, or when the
call did not complete, `verify` says why there is no picture.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from . import protocol as p
from .command import Command

ARGUMENT = p.VERIFY
COMMAND = "get_viewport_screenshot"
MAX_SIZE = 320
"""Longest side of the picture: about 100 image tokens for a 320x180 view (width x height / 750)."""

Run = Callable[[Command, dict[str, Any]], Awaitable[dict[str, Any]]]


async def picture(commands: dict[str, Command], run: Run, env: dict[str, Any]) -> list[dict[str, Any]]:
    """Add `verify` to a finished call's envelope and return the picture's images (none if there is none)."""
    screenshot = commands.get(COMMAND)
    if env["status"] != p.COMPLETED:
        env[ARGUMENT] = {"error": f"no picture: the call ended {env['status']}"}
        return []
    if screenshot is None:
        env[ARGUMENT] = {"error": f"no picture: the plugin with blender_{COMMAND} (scene) is not loaded"}
        return []
    start = time.perf_counter()
    shot = await run(screenshot, {"max_size": MAX_SIZE, "target_uuid": env["target_uuid"]})
    result = shot.get("result")
    if shot["status"] != p.COMPLETED or not isinstance(result, dict):
        env[ARGUMENT] = {"error": f"no picture: {shot['status']}: {shot['error']}"}
        return []
    env[ARGUMENT] = {**{k: result[k] for k in ("width", "height", "view", "camera") if k in result},
                     "ms": round((time.perf_counter() - start) * 1000)}
    return [block for block in p.content_blocks(result) if block["type"] == "image"]
