"""`blendbus addon build`: the zip installs into Blender and works with nothing else installed.

The Blender here sees only bpy (and numpy, which Blender ships): blendbus, mcp and the plugins come
from the zip's wheels and bundled handler packages. Timers never fire in module mode, so the test
drives the addon's GUI drain timer itself.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from blendbus import protocol as p
from blendbus.client import connect
from blendbus.extension import build
from blendbus.testing import call_envelope, peer_uuids, serve_http
from blendbus.testing.blender import needs_bpy, stop_process

pytestmark = [pytest.mark.anyio, needs_bpy]

GUI_PEER = textwrap.dedent('''
    import os, sys, time
    sys.path.append(sys.argv[1])
    import bpy
    result = bpy.ops.extensions.package_install_files(filepath=sys.argv[2], repo="user_default",
                                                      enable_on_install=True)
    assert result == {"FINISHED"}, result
    import blendbus, mcp
    assert "extensions" in blendbus.__file__ and "extensions" in mcp.__file__, (blendbus.__file__, mcp.__file__)
    name = "bl_ext.user_default.blendbus"
    prefs = bpy.context.preferences.addons[name].preferences
    prefs.server_url, prefs.allow_code_execution, prefs.client_uuid = sys.argv[3], True, "gui-peer"
    assert hasattr(prefs, "polyhaven__enabled")  # plugin preferences from the zip's declarations.json
    bpy.ops.blendbus.connect()
    blender = sys.modules[name + ".blender"]
    stop = sys.argv[4]
    deadline = time.monotonic() + 120
    while not os.path.exists(stop) and time.monotonic() < deadline:
        interval = blender.drain_timer()
        time.sleep(interval or 0.001)
    ran = len(blender._State.core.recent)
    bpy.ops.blendbus.disconnect()
    print("ran", ran)
''')


def only_bpy(tmp_path: Path) -> Path:
    """A folder holding links to bpy and numpy alone."""
    site = Path(importlib.util.find_spec("bpy").submodule_search_locations[0]).parent
    isolated = tmp_path / "only-bpy"
    isolated.mkdir()
    for entry in site.iterdir():
        if entry.name.split("-")[0].split(".")[0] in ("bpy", "numpy"):
            (isolated / entry.name).symlink_to(entry)
    return isolated


async def test_built_extension_installs_and_serves_on_its_own(blendbus_server, tmp_path):
    zip_path = build(tmp_path / "blendbus.zip")
    stop = tmp_path / "stop"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["BLENDER_USER_RESOURCES"] = str(tmp_path / "user")
    async with serve_http(blendbus_server) as url:
        log = open(tmp_path / "gui.log", "w")
        proc = subprocess.Popen([sys.executable, "-S", "-c", GUI_PEER, str(only_bpy(tmp_path)), str(zip_path),
                                 url, str(stop)], stdout=log, stderr=subprocess.STDOUT, env=env)
        try:
            for _ in range(1200):
                if "gui-peer" in await peer_uuids(blendbus_server) or proc.poll() is not None:
                    break
                await asyncio.sleep(0.05)
            assert "gui-peer" in await peer_uuids(blendbus_server), (tmp_path / "gui.log").read_text()
            async with connect(url) as client:
                env_ = await call_envelope(client, "blender_execute_code", {"code": "print(len(bpy.data.objects))"})
                assert env_["status"] == p.COMPLETED and env_["result"] == "3\n"
                info = await call_envelope(client, "blender_get_scene_info")  # handlers bundled in the zip
                assert info["status"] == p.COMPLETED and info["result"]["object_count"] == 3
        finally:
            stop.touch()  # lets the script report, then leave; terminated if it does not within 30 s
            try:
                await asyncio.to_thread(proc.wait, 30)
            finally:
                await asyncio.to_thread(stop_process, proc)  # the server on this loop answers its goodbye
                log.close()
    assert "ran 2" in (tmp_path / "gui.log").read_text()


def test_building_for_another_platform_is_refused(tmp_path):
    with pytest.raises(ValueError, match="not installed on this"):
        build(tmp_path / "x.zip", target_platform="windows-arm64")
