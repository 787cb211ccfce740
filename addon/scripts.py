"""Running Python text inside the peer: fresh globals per run, stdout/stderr captured per thread.

Capture is per thread, not a swap of sys.stdout, so two jobs running at once (the Python test
peer, or Blender printing from its own threads) never see each other's output.
"""

from __future__ import annotations

import io
import sys
import threading
from contextlib import contextmanager
from typing import Any, Iterator, TextIO

from .jobqueue import JobCancelled
from .traces import format_exception

_local = threading.local()


class _Router(io.TextIOBase):
    """Stands in for sys.stdout/stderr: writes go to this thread's capture buffer if it has one."""

    def __init__(self, name: str, fallback: TextIO) -> None:
        self._name, self._fallback = name, fallback

    def write(self, text: str) -> int:
        buf = getattr(_local, self._name, None)
        return (buf if buf is not None else self._fallback).write(text)

    def flush(self) -> None:
        buf = getattr(_local, self._name, None)
        (buf if buf is not None else self._fallback).flush()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return "utf-8"


def _install() -> None:
    if not isinstance(sys.stdout, _Router):
        sys.stdout = _Router("stdout", sys.stdout)
    if not isinstance(sys.stderr, _Router):
        sys.stderr = _Router("stderr", sys.stderr)


@contextmanager
def capture() -> Iterator[tuple[io.StringIO, io.StringIO]]:
    _install()
    out, err = io.StringIO(), io.StringIO()
    prev = getattr(_local, "stdout", None), getattr(_local, "stderr", None)
    _local.stdout, _local.stderr = out, err
    try:
        yield out, err
    finally:
        _local.stdout, _local.stderr = prev


def fresh_globals() -> dict[str, Any]:
    """What a script sees: bpy, bmesh and mathutils when running inside Blender, nothing shared.

    Only a process that already runs Blender gets them: importing bpy here would load all of
    Blender into a process that is not a Blender peer (and off its main thread).
    """
    env: dict[str, Any] = {"__name__": "__blendbus_script__", "__builtins__": __builtins__}
    if "bpy" in sys.modules:
        for name in ("bpy", "bmesh", "mathutils"):
            env[name] = __import__(name)
    return env


class ScriptError(Exception):
    """A script raised: carries the traceback (as the script's own frames) and what it printed."""

    def __init__(self, trace: str, stdout: str) -> None:
        super().__init__(trace)
        self.trace, self.stdout = trace, stdout


def run(code: str, filename: str) -> str:
    """Run `code` with fresh globals; returns stdout (stderr appended under a marker if any)."""
    with capture() as (out, err):
        try:
            exec(compile(code, filename, "exec"), fresh_globals())  # noqa: S102 - this is the feature
        except JobCancelled:
            raise
        except BaseException as exc:  # noqa: BLE001 - SystemExit in a script must not stop Blender
            tb = exc.__traceback__.tb_next if exc.__traceback__ else None  # hide this frame
            trace = format_exception(exc, tb)
            raise ScriptError(trace + err.getvalue(), out.getvalue()) from None
    text = out.getvalue()
    if err.getvalue():
        text += "\n--- stderr ---\n" + err.getvalue()
    return text
