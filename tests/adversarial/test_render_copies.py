"""Queued renders do not each hold a copy of the scene (security round 3, a weak spot).

The attack: each queued render saved a full copy of the scene before a worker was free to render
it: eight renders queued at once made eight copies. Now a render saves its copy when its turn comes,
a few at a time, and waits for its turn holding neither a copy nor a thread.
"""

from __future__ import annotations

import asyncio

import pytest

from blendbus import protocol as p
from blendbus.testing import call_envelope

pytestmark = pytest.mark.anyio
RENDERS = 5


async def test_queued_renders_hold_no_scene_copy_until_their_turn(blendbus_bpy_client, tmp_path):
    client = blendbus_bpy_client
    render = {"engine": "WORKBENCH", "resolution": [64, 36], "max_size": 32}
    queued = [await call_envelope(client, "blender_send_message", {
        "payload": {"message_type": "command_dispatch", "command": "render", "params": render}, "wait": False})
        for _ in range(RENDERS)]
    assert all(q["status"] == p.QUEUED for q in queued)
    # The last one is cancelled while it waits for its turn: it ends without ever saving a copy.
    await asyncio.sleep(0.5)
    cancelled = await call_envelope(client, "blender_cancel_job", {"job_id": queued[-1]["job_id"]})
    assert cancelled["status"] == p.CANCELLED
    most = 0
    ends: dict[str, str] = {}
    for _ in range(1200):  # up to two minutes
        copies = list(tmp_path.glob("blendbus-render-*/scene.blend"))
        most = max(most, len(copies))
        for q in queued:
            env = await call_envelope(client, "blender_get_job", {"job_id": q["job_id"]})
            if env["status"] in p.FINAL_STATUSES:
                ends[q["job_id"]] = env["status"]
        if len(ends) == RENDERS:
            break
        await asyncio.sleep(0.1)
    assert [ends.get(q["job_id"]) for q in queued] == [p.COMPLETED] * (RENDERS - 1) + [p.CANCELLED]
    assert 1 <= most <= 2, f"{most} scene copies at once"
    assert list(tmp_path.glob("blendbus-render-*")) == []  # every copy removed
