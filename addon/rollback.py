"""Undoing a half-finished build: plugin handlers record what exists, and remove what they added
if they fail, so a failed call leaves no half-built world, material or import behind."""

from __future__ import annotations

from typing import Any

KINDS = ("objects", "meshes", "materials", "images", "worlds", "node_groups", "collections", "cameras", "lights",
         "textures", "actions", "armatures", "curves")


class Created:
    """Snapshot of bpy.data at construction; `new()` is what was added since, `rollback()` removes it."""

    def __init__(self) -> None:
        import bpy

        self.before = {kind: set(getattr(bpy.data, kind)) for kind in KINDS}

    def new(self) -> dict[str, list[Any]]:
        import bpy

        return {kind: [d for d in getattr(bpy.data, kind) if d not in seen] for kind, seen in self.before.items()}

    def names(self) -> dict[str, list[str]]:
        return {kind: sorted(d.name for d in items) for kind, items in self.new().items() if items}

    def rollback(self) -> None:
        import bpy

        for kind, items in self.new().items():  # objects first: they use the data-blocks after them
            for item in items:
                try:
                    getattr(bpy.data, kind).remove(item)
                except (ReferenceError, RuntimeError):
                    pass
