"""Rendering the scene without freezing the peer: a saved copy renders in a child Blender process.

The peer's main thread only saves the copy; a worker thread runs the child, reads its render
statistics (the `render_stats` handler fires in background mode) as progress, and kills it when
the job is cancelled. Meanwhile the peer answers other calls. Runs inside Blender (bpy only).

A copy is a whole .blend: renders queued behind each other must not each hold one. A render saves
its copy only when its turn comes (`COPIES`: a few at once, and a bound on their bytes), and waits
for its turn holding no thread and no copy.
"""

from __future__ import annotations

import base64
import json
import os
import queue
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import bpy
from blendbus.protocol import IMAGES_KEY
from blendbus_addon.paths import read_regular

from .handlers import camera_named

ENGINES = {"EEVEE": ("BLENDER_EEVEE_NEXT", "BLENDER_EEVEE"), "CYCLES": ("CYCLES",),
           "WORKBENCH": ("BLENDER_WORKBENCH",)}
"""Engine argument -> Blender's identifiers for it, newest first (EEVEE's changed in 4.2, and back in 5.0)."""
MAX_PREVIEW_BYTES = 64 * 1024 * 1024
EXIT_GRACE_S = 10.0
"""How long a child that reported its render done may take to exit before it is killed."""
PROGRESS = [(re.compile(r"Sample (\d+)/(\d+)"), "sample"), (re.compile(r"Rendering (\d+) / (\d+) samples"), "sample"),
            (re.compile(r"Rendered (\d+)/(\d+) Tiles"), "tile")]
"""What render_stats lines say about progress, per engine."""

CHILD = r"""
import json, sys
args = json.loads(sys.argv[-1])
import bpy
bpy.ops.wm.open_mainfile(filepath=args["blend"])
scene = bpy.context.scene
if args["camera"]:
    scene.camera = bpy.data.objects[args["camera"]]
if args["frame"] is not None:
    scene.frame_set(args["frame"])
r = scene.render
for engine in args["engines"]:
    try:
        r.engine = engine
        break
    except TypeError:
        continue
if args["resolution"]:
    r.resolution_x, r.resolution_y = args["resolution"]
r.resolution_percentage = 100
samples = args["samples"]
if r.engine == "CYCLES":
    scene.cycles.device = "CPU"
    samples = samples or scene.cycles.samples
    scene.cycles.samples = samples
elif r.engine.startswith("BLENDER_EEVEE"):
    samples = samples or scene.eevee.taa_render_samples
    scene.eevee.taa_render_samples = samples
r.image_settings.file_format = "PNG"
r.filepath = args["out"]
r.use_file_extension = False
bpy.app.handlers.render_stats.append(lambda stats: print("BLENDBUS_STATS " + str(stats), flush=True))
bpy.ops.render.render(write_still=True)
image = bpy.data.images.load(args["out"])
width, height = image.size
scale = min(1.0, args["max_size"] / max(width, height))
image.scale(max(1, round(width * scale)), max(1, round(height * scale)))
image.filepath_raw, image.file_format = args["preview"], "PNG"
image.save()
print("BLENDBUS_DONE " + json.dumps({"engine": r.engine, "samples": samples, "width": width, "height": height,
                                     "preview": list(image.size)}), flush=True)
import os
os._exit(0)  # the work is saved: skip a teardown that crashes (bpy 4.2) or hangs (bpy 4.5) in module mode
"""


MAX_RENDERS = 2
"""Renders with a scene copy at once on one peer: the others wait their turn without one."""
MAX_COPY_BYTES = 4 * 1024**3
"""The scene copies of one peer's renders together hold at most this many bytes."""


class Copies:
    """Turns to hold a scene copy: at most `count` at once, and `max_bytes` of copies together."""

    def __init__(self, count: int, max_bytes: int) -> None:
        self.count, self.max_bytes = count, max_bytes
        self._lock = threading.Lock()
        self._holding: dict[Future[None], int] = {}
        self._waiting: list[Future[None]] = []

    def turn(self) -> Future[None]:
        """A future done when this render may save its copy: at once when a place is free."""
        turn: Future[None] = Future()
        with self._lock:
            self._waiting.append(turn)
            self._grant()
        return turn

    def holds(self, turn: Future[None], size: int) -> None:
        """The copy of `turn` was saved: `size` bytes. ValueError when the copies would pass the bound."""
        with self._lock:
            held = sum(self._holding.values())
            if held + size > self.max_bytes:
                raise ValueError(f"this scene's copy ({size} bytes) would take this peer's render copies past"
                                 f" {self.max_bytes} bytes ({held} held by renders still running); retry when they end")
            self._holding[turn] = size

    def release(self, turn: Future[None]) -> None:
        """The render ended (or never got its turn): its place goes to the next in line."""
        with self._lock:
            if turn in self._waiting:
                self._waiting.remove(turn)
            self._holding.pop(turn, None)
            self._grant()

    def _grant(self) -> None:
        while self._waiting and len(self._holding) < self.count:
            turn = self._waiting.pop(0)
            self._holding[turn] = 0
            turn.set_result(None)


COPIES = Copies(MAX_RENDERS, MAX_COPY_BYTES)


def _command(args: dict[str, Any]) -> list[str]:
    """A background Blender: the same Blender binary in the GUI, this Python with bpy headless."""
    if bpy.app.binary_path and not bpy.app.binary_path.endswith(("python", "python3")):
        return [bpy.app.binary_path, "-b", "--factory-startup", "--python-expr", CHILD, "--", json.dumps(args)]
    return [sys.executable, "-c", CHILD, json.dumps(args)]


def _progress(line: str) -> tuple[float | None, str] | None:
    for pattern, unit in PROGRESS:
        found = pattern.search(line)
        if found:
            done, total = int(found.group(1)), int(found.group(2))
            return (done / total if total else None), f"{unit} {done}/{total}"
    return None


def _run(job: Any, args: dict[str, Any]) -> dict[str, Any]:
    """Run the child to the end (or kill it on cancel); its progress becomes the job's."""
    # Blender's own temporary folder goes in our work folder, which is removed afterwards: the child
    # never removes it itself (it skips its teardown, or is killed on cancel).
    scratch = str(Path(args["blend"]).parent)
    proc = subprocess.Popen(_command(args), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env={**os.environ, "TMPDIR": scratch})
    lines: queue.Queue[str | None] = queue.Queue()
    threading.Thread(target=lambda: ([lines.put(line) for line in proc.stdout], lines.put(None)),  # type: ignore[union-attr]
                     daemon=True).start()
    tail: list[str] = []
    done = None
    while True:
        if job.cancelled:
            proc.kill()
            proc.wait()
            raise RuntimeError("render cancelled: the rendering Blender was stopped")
        try:
            line = lines.get(timeout=0.2)
        except queue.Empty:
            continue
        if line is None:
            break
        tail = (tail + [line.rstrip()])[-20:]
        if line.startswith("BLENDBUS_DONE "):
            done = json.loads(line.removeprefix("BLENDBUS_DONE "))
            break
        elif line.startswith("BLENDBUS_STATS "):
            found = _progress(line)
            if found:
                job.progress(*found)
    try:
        code = proc.wait(EXIT_GRACE_S)
    except subprocess.TimeoutExpired:  # it finished its work: a child stuck on its way out must not hold us
        proc.kill()
        code = proc.wait()
    if done is None:
        raise RuntimeError(f"the rendering Blender failed (exit {code}):\n" + "\n".join(tail[-8:]))
    return done


def render(job: Any, engine: str | None = None, samples: int | None = None, resolution: list[int] | None = None,
           max_size: int = 800, camera: str | None = None, frame: int | None = None,
           filepath: str | None = None) -> Any:
    scene = bpy.context.scene
    if camera is not None:
        camera_named(camera)  # refused here, not after starting a Blender to render
    if camera is None and scene.camera is None:
        raise LookupError("the scene has no active camera: add one, or pass camera=<name>")
    current = next((name for name, ids in ENGINES.items() if scene.render.engine in ids), "EEVEE")
    engine = (engine or current).upper()
    outputs = job.outputs
    final = outputs.output(filepath, suffix=".png", stem="render")
    started = time.monotonic()
    turn = COPIES.turn()
    work = None
    try:
        if not turn.done():
            job.progress(None, f"waiting for one of the {MAX_RENDERS} renders running on this peer to end")
            yield job.until(turn)
        work = Path(tempfile.mkdtemp(prefix="blendbus-render-"))
        blend = work / "scene.blend"
        bpy.ops.wm.save_as_mainfile(filepath=str(blend), copy=True, check_existing=False)  # the user's file is kept
        COPIES.holds(turn, blend.stat().st_size)
        with outputs.writing(final) as tmp:
            args = {"blend": str(blend), "out": str(tmp), "preview": str(work / "preview.png"), "camera": camera,
                    "frame": frame, "engines": ENGINES[engine], "samples": samples, "resolution": resolution,
                    "max_size": max_size}
            done = yield job.background(_run, job, args)
        preview = read_regular(work / "preview.png", MAX_PREVIEW_BYTES)
    finally:
        if work is not None:
            shutil.rmtree(work, ignore_errors=True)
        COPIES.release(turn)
    return {"filepath": str(final), "width": done["width"], "height": done["height"], "engine": engine,
            "view": "camera", "camera": camera or scene.camera.name,
            "blender_engine": done["engine"], "samples": done["samples"], "seconds": round(time.monotonic() - started, 2),
            "image": {"width": done["preview"][0], "height": done["preview"][1]},
            IMAGES_KEY: [{"data": base64.b64encode(preview).decode("ascii"), "mime_type": "image/png"}]}
