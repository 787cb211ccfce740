"""A real `blendbus peer` (Blender as a Python module) in a child process, for tests."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

needs_bpy = pytest.mark.skipif(importlib.util.find_spec("bpy") is None,
                               reason="bpy (Blender as a Python module) is not installed: pip install 'blendbus[peer]'")


@asynccontextmanager
async def blender_peer(server, url: str, tmp_path: Path, *settings: str, uuid: str = "bpy-peer",
                       env: dict[str, str] | None = None, blend: Path | None = None,
                       declare: bool = True) -> AsyncIterator[subprocess.Popen]:
    """`blendbus peer` with `settings` ("key=value") joined to `server` at `url`; yields the process.

    With `declare`, the peer declares what `server` declares: plugins the server has but that are
    not installed (a test's extra plugins) are passed to it with `--plugin`."""
    from .kit import peer_uuids

    cmd = [sys.executable, "-m", "blendbus", "peer", "--server", url, "--uuid", uuid,
           "--state-dir", str(tmp_path / f"peer-{uuid}")]
    for info in server.plugins.plugins if declare else []:
        if info.distribution is None and info.module is not None and not info.error:
            cmd += ["--plugin", f"{info.name}={info.module.__name__}"]
    if blend is not None:
        cmd += ["--blend", str(blend)]
    for item in settings:
        cmd += ["--set", item]
    log = open(tmp_path / f"peer-{uuid}.log", "w")
    # Blender's temporary folder in the test's own (a killed Blender never removes it).
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                            env={**(env or os.environ), "TMPDIR": str(tmp_path)})
    try:
        for _ in range(1200):
            if uuid in await peer_uuids(server):
                break
            if proc.poll() is not None:
                raise AssertionError((tmp_path / f"peer-{uuid}.log").read_text())
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("the Blender peer did not register: " + (tmp_path / f"peer-{uuid}.log").read_text())
        yield proc
    finally:
        # In a thread: the server on this event loop must stay free to answer the peer's goodbye.
        await asyncio.to_thread(stop_process, proc)
        log.close()


def stop_process(*procs: subprocess.Popen, grace_s: float = 15.0) -> None:
    """Terminate processes, then kill whichever has not exited after `grace_s`."""
    for proc in procs:
        proc.terminate()
    for proc in procs:
        try:
            proc.wait(grace_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def run_in_blender(script: str, *args: str, workdir: Path, timeout: float = 180.0) -> str:
    """Run `script` in a fresh Python with bpy (e.g. to make test assets); returns its stdout.

    `args` become sys.argv[1:]; Blender's user resources live under `workdir`, not the user's.
    """
    env = {**os.environ, "BLENDER_USER_RESOURCES": str(workdir / "blender-user")}
    done = subprocess.run([sys.executable, "-c", script, *args], env=env, capture_output=True, text=True,
                          timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"the Blender script failed:\n{done.stderr[-4000:]}")
    return done.stdout


BOX_MODEL = r"""
import json, sys, bpy
out, name, size, scale, formats = sys.argv[1], sys.argv[2], float(sys.argv[3]), json.loads(sys.argv[4]), sys.argv[5:]
for o in list(bpy.data.objects):
    bpy.data.objects.remove(o)
bpy.ops.mesh.primitive_cube_add(size=size)
box = bpy.context.active_object
box.name, box.scale = name, scale
bpy.ops.object.transform_apply(scale=True)
export = {"glb": lambda p: bpy.ops.export_scene.gltf(filepath=p, export_format="GLB"),
          "gltf": lambda p: bpy.ops.export_scene.gltf(filepath=p, export_format="GLTF_SEPARATE"),
          "obj": lambda p: bpy.ops.wm.obj_export(filepath=p)}
for fmt in formats:
    export[fmt](f"{out}/{name.lower()}.{fmt}")
"""


def make_model(folder: Path, name: str, *formats: str, size: float = 1.0,
               scale: tuple[float, float, float] = (1.0, 1.0, 1.0)) -> dict[str, Path]:
    """A real model for an asset plugin's fake API: a box named `name` (`size` wide, then scaled and
    applied), made by bpy and exported as each of `formats` (glb, gltf, obj) into `folder`."""
    run_in_blender(BOX_MODEL, str(folder), name, str(size), json.dumps(list(scale)), *formats, workdir=folder)
    return {fmt: folder / f"{name.lower()}.{fmt}" for fmt in formats}
