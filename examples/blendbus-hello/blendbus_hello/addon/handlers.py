"""Runs inside Blender: the standard library, bpy/bmesh/mathutils and blendbus_addon only."""

from __future__ import annotations

from typing import Any


def greet(name: str) -> dict[str, Any]:
    import bpy

    return {"greeting": f"hello {name}", "blender": bpy.app.version_string, "objects": len(bpy.data.objects)}
