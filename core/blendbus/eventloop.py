"""The event loop blendbus runs on: uvloop where it is installed, asyncio's own elsewhere.

Every call through the bus wakes three processes (client, server, peer) several times; uvloop's
wake-ups and socket handling cost a fraction of the pure-Python loop's, which halves the no-op
round trip on a small machine (docs/performance.md). Nothing depends on it: Blender's bundled
Python, Windows and any environment without it use the standard loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

try:
    import uvloop as _uvloop
except ImportError:  # pragma: no cover - depends on the platform
    _uvloop = None


def name() -> str:
    """Which loop `run` and `new_event_loop` use: "uvloop" or "asyncio"."""
    return "uvloop" if _uvloop is not None else "asyncio"


def new_event_loop() -> asyncio.AbstractEventLoop:
    return _uvloop.new_event_loop() if _uvloop is not None else asyncio.new_event_loop()


def run(main: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run` on the fastest loop available."""
    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        return runner.run(main)
