"""blendbus — the Blender side of the bus.

Blender imports this package as an extension and calls register()/unregister(). Nothing here
imports bpy at module level: the bpy-free modules (transport, jobqueue, executor, peer,
handler_sync, scripts) import and test without Blender.
"""

from __future__ import annotations

import sys

# Read by Blender when the package is enabled as a legacy add-on (the headless peer does this);
# as an extension, blender_manifest.toml is used instead. Blender reads both without running any
# code, so each spells the version: tests/test_extension.py holds them to blendbus.__version__.
bl_info = {
    "name": "blendbus",
    "author": "blendbus",
    "version": (0, 4, 3),
    "blender": (4, 2, 0),
    "location": "View3D > Sidebar > blendbus",
    "description": "Connect Blender to a blendbus MCP server so LLMs can drive it",
    "category": "System",
}


def _alias() -> None:
    # Installed as an extension this package is `bl_ext.<repo>.blendbus`; command tables name the
    # built-in handlers `blendbus_addon.*`, so make that name resolve to this package.
    if __name__ != "blendbus_addon":
        sys.modules.setdefault("blendbus_addon", sys.modules[__name__])


def register() -> None:
    _alias()
    from . import blender

    blender.register()


def unregister() -> None:
    from . import blender

    blender.unregister()
