"""blendbus-scene: the scene, its objects and its data, read from a running Blender."""

from __future__ import annotations

from collections.abc import Callable

from pydantic import BaseModel, Field

from blendbus import Command, Resource, hookimpl

__version__ = "0.2.0"
HANDLERS = "blendbus_scene.addon.handlers"
READ_ONLY = {"read_only": True, "destructive": False, "idempotent": True, "open_world": False}


class SceneInfo(BaseModel):
    scene: str | None = Field(default=None, description="Scene name; the active scene when omitted")


class ObjectInfo(BaseModel):
    name: str = Field(description="The object's name, as in the outliner")


class Page(BaseModel):
    offset: int = Field(default=0, ge=0, description="Index of the first item")
    limit: int = Field(default=100, ge=1, le=1000, description="Items per page")


class BrowseData(Page):
    path: str = Field(
        default="",
        max_length=1000,
        description="Slash-separated path inside bpy.data: '' lists collections, 'objects' lists objects,"
        " 'objects/Cube' shows its properties, 'objects/Cube/data' follows a pointer",
    )


class Screenshot(BaseModel):
    filepath: str | None = Field(default=None, max_length=1024, description=(
        "Where to write the PNG, inside the Blender peer's output folder: a relative name such as"
        " 'views/front.png', or '//name.png' beside a saved .blend inside that folder. A fresh name when omitted."))
    max_size: int = Field(default=800, ge=16, le=4096, description="Longest side of the image in pixels")


@hookimpl
def register_commands(register: Callable[[Command], None]) -> None:
    register(Command("get_scene_info", "Describe the scene: frame range, render engine, units, camera, world,"
                     " collections, counts per object type, and every object with location, parent and collections.",
                     f"{HANDLERS}:get_scene_info", params=SceneInfo, annotations=READ_ONLY, timeout=30))
    register(Command("get_object_info", "Everything about one object: transform, world bounding box, visibility,"
                     " hierarchy, collections, modifiers, constraints, custom properties, materials, and mesh,"
                     " light or camera data.", f"{HANDLERS}:get_object_info", params=ObjectInfo,
                     annotations=READ_ONLY, timeout=30))
    register(Command("list_objects", "A page of the scene's objects: name, type, location, parent.",
                     f"{HANDLERS}:list_objects", params=Page, annotations=READ_ONLY, timeout=30))
    register(Command("browse_data", "Walk bpy.data read-only, a page at a time: collections, then items, then"
                     " their RNA properties rendered as JSON. Follow next_offset for the next page.",
                     f"{HANDLERS}:browse_data", params=BrowseData, annotations=READ_ONLY, timeout=30))
    register(Command("get_viewport_screenshot", "See the scene: the 3D viewport in the GUI, or a small Workbench"
                     " render from the active camera headless (a temporary camera frames the scene if there is"
                     " none). Returns {filepath, width, height} and the PNG as image content.",
                     f"{HANDLERS}:get_viewport_screenshot", params=Screenshot,
                     annotations={"read_only": False, "destructive": False, "idempotent": True, "open_world": False},
                     timeout=120))


@hookimpl
def register_resources(register: Callable[[Resource], None]) -> None:
    register(Resource("blender://scene/info", "scene-info", "get_scene_info", "The scene summary (get_scene_info)"))
    register(Resource("blender://scene/objects", "scene-objects", "list_objects", "The scene's objects",
                      params={"limit": 1000}))
    register(Resource("blender://scene/object/{name}", "scene-object", "get_object_info", "One object in detail"))
