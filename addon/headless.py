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

from blendbus.locks import Claim, claim, holder

from .transport import REFUSED

ADDON_MODULE = "blendbus_addon"


def enable_addon() -> None:
    """Register the addon with Blender the way the GUI would, so its preferences exist."""
    import addon_utils
    import bpy

    if ADDON_MODULE in bpy.context.preferences.addons:
        return
    # This process imported the package already (it runs `blendbus peer`); Blender would take the
    # unknown load time for a change on disk, print so, and import the addon a second time.
    module = sys.modules.get(ADDON_MODULE)
    if module is not None and module.__file__:
        module.__time__ = os.path.getmtime(module.__file__)
    errors: list[BaseException] = []
    addon_utils.enable(ADDON_MODULE, default_set=True, handle_error=errors.append)
    if errors or ADDON_MODULE not in bpy.context.preferences.addons:
        raise RuntimeError(f"could not enable the blendbus addon: {errors[0] if errors else 'unknown error'}")


def claim_uuid(state_dir: Path, uuid: str | None) -> tuple[str, Claim]:
    """This process's uuid, held exclusively while it runs.

    Without `uuid`: the uuid remembered in the state dir (`client_uuid`), or, when another running
    peer holds that one, the next remembered slot (`client_uuid.2`, ...), each made on first use, so
    two peers sharing a state dir never share a uuid. An explicit uuid another process holds is an
    error naming that process."""
    if uuid is not None:
        lock = state_dir / "uuids" / f"{uuid}.lock"
        held = claim(lock)
        if held is None:
            raise RuntimeError(f"uuid {uuid!r} is in use by another blendbus peer (pid {holder(lock)});"
                               " pass another --uuid, or leave it out to get a free one")
        return uuid, held
    for slot in range(1, 1000):
        path = state_dir / ("client_uuid" if slot == 1 else f"client_uuid.{slot}")
        held = claim(path.with_name(path.name + ".lock"))
        if held is None:
            continue
        if not path.exists():
            path.write_text("blender-" + secrets.token_hex(4))
        remembered = path.read_text().strip()
        by_uuid = claim(state_dir / "uuids" / f"{remembered}.lock")  # also held against an explicit --uuid
        if by_uuid is None:
            held.release()
            continue
        held.release()
        return remembered, by_uuid
    raise RuntimeError(f"999 blendbus peers already run on the state dir {state_dir}")


def main(*, server: str, token: str | None, uuid: str | None, settings: dict[str, Any], blend: Path | None,
         state_dir: Path, parent_pid: int | None = None) -> int:
    """Run until SIGTERM/SIGINT, or until the process `parent_pid` is gone (an embedded peer: the server
    that started it)."""
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
    try:
        uuid, held = claim_uuid(state_dir, uuid)
    except RuntimeError as exc:
        print(f"blendbus peer: {exc}", file=sys.stderr)
        return 2
    core = blender.new_core(server, token, uuid, state_dir, launched="embedded" if parent_pid is not None else "peer")
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
            if core.link.state == REFUSED:
                print(f"blendbus peer: {core.link.last_error}", file=sys.stderr, flush=True)
                return 2
            if not announced and core.link.state == "connected":
                print(f"blendbus peer {uuid} connected to {server} (Blender {bpy.app.version_string})",
                      file=sys.stderr, flush=True)
                announced = True
            if core.resume_ready():
                blender.settle()
            # Wake often while handlers wait on background work, else block on the queue.
            payload = core.queue.take(timeout=0.005 if core.pending else 0.25)
            if payload is not None:
                core.run_payload(payload)
                blender.settle()
    finally:
        blender.stop()
        held.release()
    return 0
