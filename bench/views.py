"""Seeing the scene: the headless view (Workbench with the node colours), a Cycles preview render and
a pick in the viewport App, timed end to end through a real Blender peer (MCP call -> server -> bpy
peer -> answer back).

    python -m bench.views [--runs 5]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from blendbus import eventloop, mcp_apps
from blendbus.client import connect
from blendbus.testing import call_envelope, make_server, serve_http
from blendbus.testing.blender import blender_peer

from . import startup

CALLS = {
    "blender_get_viewport_screenshot, 640 px (Workbench, node colours)": ("blender_get_viewport_screenshot",
                                                                           {"max_size": 640}),
    "blender_render, Cycles 16 samples, 320x180": ("blender_render", {"engine": "CYCLES", "samples": 16,
                                                                     "resolution": [320, 180], "max_size": 320}),
    "blender_pick_object, the centre of the camera view (the viewport App's click)": ("blender_pick_object",
                                                                                     {"x": 0.5, "y": 0.5}),
    "blender_execute_code turning the cube": ("blender_execute_code",
                                              {"code": "bpy.data.objects['Cube'].rotation_euler.z += 0.1"}),
    "the same with verify=true (a picture of at most 320 px)": ("blender_execute_code", {
        "code": "bpy.data.objects['Cube'].rotation_euler.z += 0.1", "verify": True}),
}


async def measure(runs: int) -> dict[str, list[float]]:
    server = make_server()
    with tempfile.TemporaryDirectory() as tmp:
        async with serve_http(server) as url, blender_peer(server, url, Path(tmp), "allow_code_execution=true"), \
                connect(url, extensions=[mcp_apps.host()]) as client:
            results: dict[str, list[float]] = {}
            for label, (tool, arguments) in CALLS.items():
                await call_envelope(client, tool, arguments)  # the first call loads what later ones reuse
                seconds = []
                for _ in range(runs):
                    start = time.perf_counter()
                    env = await call_envelope(client, tool, arguments)
                    seconds.append(time.perf_counter() - start)
                    assert env["status"] == "completed", env["error"]
                results[label] = seconds
    return results


def table(result: dict[str, list[float]]) -> str:
    return startup.table(result, first="call", unit="ms")  # a pick takes milliseconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    print(table(eventloop.run(measure(parser.parse_args().runs))))


if __name__ == "__main__":
    main()
