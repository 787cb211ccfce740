"""Tracebacks for the caller: the useful frames, without the Blender machine's absolute paths.

A trace sent back to an LLM names each frame's file relative to the import root it came from
(`blendbus_scene/addon/handlers.py`, `bpy/ops.py`), so the reader sees which module failed while the
machine's folders, user names and install layout stay private. bpy-free.
"""

from __future__ import annotations

import os
import sys
import traceback
from types import TracebackType


def portable(filename: str) -> str:
    """`filename` relative to the longest sys.path entry holding it; `<job_...>` names stay as they are."""
    if filename.startswith("<"):
        return filename
    best = ""
    for entry in sys.path:
        root = os.path.abspath(entry or ".")
        if filename.startswith(root + os.sep) and len(root) > len(best):
            best = root
    if best:
        return os.path.relpath(filename, best)
    return os.path.join(*filename.split(os.sep)[-2:]) if os.sep in filename else filename


def format_exception(exc: BaseException, tb: TracebackType | None) -> str:
    """Like traceback.format_exception from frame `tb` on, with portable paths (chained exceptions too)."""
    te = traceback.TracebackException(type(exc), exc, tb)
    seen: set[int] = set()
    pending: list[traceback.TracebackException | None] = [te]
    while pending:
        item = pending.pop()
        if item is None or id(item) in seen:
            continue
        seen.add(id(item))
        for frame in item.stack:
            frame.filename = portable(frame.filename)
        pending += [item.__cause__, item.__context__]
    return "".join(te.format())
