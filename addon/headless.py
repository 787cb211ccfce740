"""`blendbus peer`: the addon running on the bpy module (or `blender -b`), no GUI.

bpy.app.timers never fire in module mode, so the main thread blocks on the job queue instead of
draining from a timer; the transport runs in its background thread exactly as in the GUI.
"""

from __future__ import annotations

import os
import secrets
import signal
import sys
import threading
from pathlib import Path
from typing import Any

ADDON_MODULE = "blendbus_addon"


def enable_addon() -> None:
    """Register the addon with Blender the way the GUI would, so its preferences exist."""
    import addon_utils
    import bpy

    if ADDON_MODULE in bpy.context.preferences.addons:
        return
    errors: list[BaseException] = []
    addon_utils.enable(ADDON_MODULE, default_set=True, handle_error=errors.append)
    if errors or ADDON_MODULE not in bpy.context.preferences.addons:
        raise RuntimeError(f"could not enable the blendbus addon: {errors[0] if errors else 'unknown error'}")


def remembered_uuid(state_dir: Path) -> str:
    path = state_dir / "client_uuid"
    if path.exists():
        return path.read_text().strip()
    state_dir.mkdir(parents=True, exist_ok=True)
    uuid = "blender-" + secrets.token_hex(4)
    path.write_text(uuid)
    return uuid


def main(*, server: str, token: str | None, uuid: str | None, settings: dict[str, Any], blend: Path | None,
         state_dir: Path, parent_pid: int | None = None) -> int:
    """Run until SIGTERM/SIGINT, or until the process `parent_pid` is gone (an embedded peer)."""
    import bpy

    from . import blender

    if blend is not None:
        if not blend.exists():
            print(f"blendbus peer: no such .blend file: {blend}", file=sys.stderr)
            return 2
        bpy.ops.wm.open_mainfile(filepath=str(blend))
    enable_addon()
    for key, value in settings.items():
        try:
            blender.set_setting(key, value)
        except ValueError as exc:
            print(f"blendbus peer: --set {key}: {exc}", file=sys.stderr)
            return 2
    uuid = uuid or remembered_uuid(state_dir)
    core = blender.new_core(server, token, uuid, state_dir)
    blender.start(core)

    stopping = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        stopping.set()
        core.queue.wake()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    announced = False
    try:
        while not stopping.is_set():
            if parent_pid is not None and os.getppid() != parent_pid:
                break  # the server that started us is gone: do not linger as an orphan
            if not announced and core.link.state == "connected":
                print(f"blendbus peer {uuid} connected to {server} (Blender {bpy.app.version_string})",
                      file=sys.stderr, flush=True)
                announced = True
            core.resume_ready()
            # Wake often while handlers wait on background work, else block on the queue.
            payload = core.queue.take(timeout=0.005 if core.pending else 0.25)
            if payload is not None:
                core.run_payload(payload)
    finally:
        blender.stop()
    return 0
