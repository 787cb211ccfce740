"""What undo by call costs: a scene-changing call on a headless Blender with a scene of N objects,
with checkpoints on (the default, `undo_checkpoints=10`) and off (`undo_checkpoints=0`); the size of
one checkpoint; and the time `blender_undo_job` takes to bring the scene back.

    python -m bench.checkpoints [--objects 10000] [--calls 5]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from blendbus import eventloop
from blendbus.client import connect
from blendbus.testing import call_envelope, make_server, serve_http
from blendbus.testing.blender import blender_peer

BUILD = """
import bmesh
mesh = bpy.data.meshes.new('shared')
bm = bmesh.new(); bmesh.ops.create_cube(bm, size=1.0); bm.to_mesh(mesh); bm.free()
for i in range({n}):
    o = bpy.data.objects.new(f'obj{{i}}', mesh); o.location = (i % 100, i // 100, 0)
    bpy.context.scene.collection.objects.link(o)
print(len(bpy.data.objects))
"""
MOVE = "bpy.data.objects['obj1'].location.z += 1"


async def _one(objects: int, calls: int, keep: int, tmp: Path) -> dict[str, Any]:
    server = make_server()
    uuid = f"ckpt-{keep}"
    async with serve_http(server) as url, blender_peer(server, url, tmp, "allow_code_execution=true",
                                                       f"undo_checkpoints={keep}", uuid=uuid), connect(url) as client:
        built = await call_envelope(client, "blender_execute_code", {"code": BUILD.format(n=objects), "timeout_s": 600})
        assert built["status"] == "completed", built["error"]
        seconds, last = [], None
        for _ in range(calls):
            start = time.perf_counter()
            last = await call_envelope(client, "blender_execute_code", {"code": MOVE})
            seconds.append(time.perf_counter() - start)
            assert last["status"] == "completed", last["error"]
        row: dict[str, Any] = {"keep": keep, "call_ms": statistics.median(seconds) * 1000}
        files = sorted((tmp / f"peer-{uuid}" / "checkpoints" / uuid).glob("*.blend"))
        if keep:
            row["checkpoint_mib"] = files[-1].stat().st_size / 2**20
            row["kept"] = len(files)
            start = time.perf_counter()
            undone = await call_envelope(client, "blender_undo_job", {"job_id": last["job_id"], "timeout_s": 600})
            row["undo_ms"] = (time.perf_counter() - start) * 1000
            assert undone["status"] == "completed", undone["error"]
    return row


async def run(objects: int = 10_000, calls: int = 5) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        rows = [await _one(objects, calls, keep, Path(tmp)) for keep in (0, 10)]
    return {"objects": objects, "calls": calls, "rows": rows}


def table(result: dict[str, Any]) -> str:
    off, on = result["rows"]
    return "\n".join([
        f"A scene of {result['objects']:,} objects; median of {result['calls']} calls that move one object.",
        "",
        "| checkpoints | call p50 | checkpoint size | kept | undo_job |",
        "|---|---|---|---|---|",
        f"| off (`undo_checkpoints=0`) | {off['call_ms']:.0f} ms | | | |",
        f"| on (`undo_checkpoints=10`) | {on['call_ms']:.0f} ms | {on['checkpoint_mib']:.1f} MiB | {on['kept']}"
        f" | {on['undo_ms']:.0f} ms |",
        "",
        f"A checkpoint costs a scene-changing call {on['call_ms'] - off['call_ms']:.0f} ms here.",
    ])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--objects", type=int, default=10_000)
    parser.add_argument("--calls", type=int, default=5)
    args = parser.parse_args()
    print(table(eventloop.run(run(args.objects, args.calls))))


if __name__ == "__main__":
    main()
