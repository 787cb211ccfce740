"""blendbus-scene: the scene, its objects and its data, read from a running Blender."""

from __future__ import annotations

from collections.abc import Callable

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from blendbus import App, Command, Completion, Prompt, PromptArgument, Resource, hookimpl

__version__ = "0.5.1"
HANDLERS = "blendbus_scene.addon.handlers"
ADDON = "blendbus_scene.addon"
READ_ONLY = {"read_only": True, "destructive": False, "idempotent": True, "open_world": False}
VIEWPORT = "ui://blendbus/viewport"
"""The MCP App that shows screenshots and renders, and lets the user pick objects in them."""
NAMES_AT_MOST = 1000
"""Names a completion offers from one kind of data (the host shows the first hundred that match)."""


def names_of(kind: str) -> Completion:
    """The names of the scene's `kind` (objects, materials, collections), for a host's autocomplete."""
    return Completion("browse_data", {"path": kind, "limit": NAMES_AT_MOST})


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
        description="Path in bpy.data: '' lists collections, 'objects' its items, 'objects/Cube' one's"
        " properties, 'objects/Cube/data' follows a pointer",
    )


class Screenshot(BaseModel):
    filepath: str | None = Field(default=None, max_length=1024, description=(
        "PNG path in the peer's output folder, e.g. 'views/front.png' ('//x.png': beside the saved .blend);"
        " a fresh name when omitted"))
    max_size: int = Field(default=800, ge=16, le=4096, description="Longest side of the image in pixels")


class Render(BaseModel):
    engine: Literal["EEVEE", "CYCLES", "WORKBENCH"] | None = Field(default=None, description=(
        "The scene's when omitted. EEVEE without a GPU compiles shaders for tens of seconds on first use;"
        " Cycles at 16 samples suits previews."))
    samples: int | None = Field(default=None, ge=1, le=4096, description="The scene's when omitted")
    resolution: list[Annotated[int, Field(ge=4, le=8192)]] | None = Field(
        default=None, min_length=2, max_length=2, description="[width, height]; the scene's when omitted")
    max_size: int = Field(default=800, ge=16, le=2048, description="Longest side of the image returned (the file"
                                                                   " keeps full size)")
    camera: str | None = Field(default=None, max_length=63, description="The scene's when omitted")
    frame: int | None = Field(default=None, ge=-1048574, le=1048574, description="The current one when omitted")
    filepath: str | None = Field(default=None, max_length=1024, description=(
        "PNG path in the peer's output folder; a fresh name when omitted"))


class Pick(BaseModel):
    x: float = Field(ge=0, le=1, description="Across the picture, from its left edge (0) to its right (1)")
    y: float = Field(ge=0, le=1, description="Down the picture, from its top edge (0) to its bottom (1)")
    view: Literal["camera", "viewport"] | None = Field(default=None, description=(
        "What the picture shows, as its result's `view` says: a camera's view, or the GUI's 3D viewport;"
        " what blender_get_viewport_screenshot shows on this peer when omitted"))
    camera: str | None = Field(default=None, max_length=63, description=(
        "The camera of a camera view (its result's `camera`); the scene's, or the framing one a headless"
        " screenshot uses when the scene has none, when omitted"))
    aspect: float | None = Field(default=None, gt=0, le=100, description=(
        "Width / height of the picture, when it differs from the scene's render resolution"))
    select: bool = Field(default=True, description="Make the object the selection and the active object")


class Export(BaseModel):
    format: str = Field(description="glb, gltf, fbx, obj, usd, stl or ply, as far as this Blender has them")
    filepath: str | None = Field(default=None, max_length=1024, description=(
        "Path in the peer's output folder; a fresh name when omitted"))
    selected_only: bool = Field(default=False, description="Only the selected objects")


class LookupApi(BaseModel):
    identifier: str | None = Field(default=None, max_length=200, description=(
        "'bpy.types.Object', 'bpy.types.Object.location' or 'bpy.ops.mesh.primitive_cube_add'"))
    search: str | None = Field(default=None, min_length=2, max_length=100,
                               description="Words to find in type names, descriptions and operator names")
    offset: int = Field(default=0, ge=0, description="First item of each list")
    limit: int = Field(default=50, ge=1, le=500, description="Items per list")
    model_config = ConfigDict(json_schema_extra={"oneOf": [{"required": ["identifier"]}, {"required": ["search"]}]})


class NodeType(BaseModel):
    node_type: str = Field(min_length=1, max_length=100, description="A node's bl_idname, e.g. 'ShaderNodeBsdfPrincipled'")
    tree_type: Literal["ShaderNodeTree", "GeometryNodeTree", "CompositorNodeTree", "TextureNodeTree"] | None = Field(
        default=None, description="The tree it goes in; guessed from the node type when omitted")


@hookimpl
def register_commands(register: Callable[[Command], None]) -> None:
    register(Command("get_scene_info", "The scene: frame range, engine, units, camera, world, collections, counts"
                     " per type, and each object's location, parent and collections.",
                     f"{HANDLERS}:get_scene_info", params=SceneInfo, annotations=READ_ONLY, timeout=30))
    register(Command("get_object_info", "One object in full: transform, world bounds, visibility, hierarchy,"
                     " collections, modifiers, constraints, custom properties, materials, and its data.", f"{HANDLERS}:get_object_info", params=ObjectInfo,
                     annotations=READ_ONLY, timeout=30))
    register(Command("list_objects", "A page of the scene's objects: name, type, location, parent.",
                     f"{HANDLERS}:list_objects", params=Page, annotations=READ_ONLY, timeout=30))
    register(Command("browse_data", "Walk bpy.data read-only, a page at a time: collections, items, then their"
                     " properties as JSON.",
                     f"{HANDLERS}:browse_data", params=BrowseData, annotations=READ_ONLY, timeout=30))
    register(Command("get_viewport_screenshot", "See the scene: the GUI's 3D viewport, or headless a quick render from"
                     " the camera. Returns the PNG and {filepath, width, height}.",
                     f"{HANDLERS}:get_viewport_screenshot", params=Screenshot,
                     annotations={"read_only": False, "destructive": False, "idempotent": True, "open_world": False},
                     timeout=120, app=VIEWPORT, changes_scene=False))
    register(Command("render", "Render the scene in a separate process (this Blender keeps answering),"
                     " with progress. Returns the image and {filepath, width, height, engine, samples, seconds}.", f"{ADDON}.render:render",
                     params=Render, annotations={"read_only": False, "destructive": False, "open_world": False},
                     timeout=1800, long_running=True, app=VIEWPORT, changes_scene=False))
    register(Command("export_scene", "Export the scene (or the selection) to a file in the peer's output folder."
                     " Returns {filepath, format, bytes, objects}.", f"{ADDON}.export:export_scene",
                     params=Export, annotations={"read_only": False, "destructive": False, "open_world": False},
                     timeout=600, changes_scene=False))
    register(Command("pick_object", "The object under a point of a screenshot or render (fractions of the picture),"
                     " made the selection and the active object. Returns its name, type, the point hit, location,"
                     " dimensions and materials; object null when the point shows no object.",
                     f"{HANDLERS}:pick_object", params=Pick, title="Pick an object in the picture",
                     annotations={"read_only": False, "destructive": False, "idempotent": True, "open_world": False},
                     timeout=30, app=VIEWPORT, visibility=("app",), changes_scene=False))
    register(Command("lookup_api", "This Blender's own Python API, exact for its version: a type, a property,"
                     " an operator's parameters, or a search. Check names here before writing bpy code.", f"{ADDON}.api:lookup_api", params=LookupApi,
                     annotations=READ_ONLY, timeout=60))
    register(Command("describe_node_type", "A node type's inputs, outputs (identifier, socket type, default) and"
                     " properties in this Blender.", f"{ADDON}.api:describe_node_type", params=NodeType,
                     annotations=READ_ONLY, timeout=30))
    register(Command("list_node_types", "Every node type (bl_idname) this Blender has.",
                     f"{ADDON}.api:list_node_types", annotations=READ_ONLY, timeout=30))


@hookimpl
def register_resources(register: Callable[[Resource], None]) -> None:
    register(Resource("blender://scene/info", "scene-info", "get_scene_info", "The scene summary (get_scene_info)"))
    register(Resource("blender://scene/objects", "scene-objects", "list_objects", "The scene's objects",
                      params={"limit": 1000}))
    register(Resource("blender://scene/object/{name}", "scene-object", "get_object_info", "One object in detail",
                      complete={"name": names_of("objects")}))
    register(Resource("blender://node-type/{node_type}", "node-type", "describe_node_type",
                      "A node type's inputs, outputs and properties",
                      complete={"node_type": Completion("list_node_types", {})}))


RESTYLE_MATERIAL = """Change the material "{material}" so that it looks {look}.

1. Read it: blender_browse_data(path="materials/{material}"), then its node tree
   (path="materials/{material}/node_tree/nodes"); blender_describe_node_type tells what a node takes.
2. Look at an object that uses it with blender_render (materials show in renders, not in the viewport).
3. Change one thing at a time with blender_execute_code, render again, and say what you changed.
"""
TIDY_COLLECTION = """Tidy the collection "{collection}": name its objects by what they are, parent what belongs
together, and apply or drop leftover transforms. Start with blender_browse_data(path="collections/{collection}/objects"),
change nothing outside it, and list what you changed at the end.
"""


@hookimpl
def register_prompts(register: Callable[[Prompt], None]) -> None:
    register(Prompt("restyle_material", "Change how one material looks, checking each step in a render.",
                    RESTYLE_MATERIAL, (
                        PromptArgument("material", "The material to change", required=True,
                                       complete=names_of("materials")),
                        PromptArgument("look", "How it should look, e.g. 'like brushed steel'", required=True)),
                    title="Restyle a material"))
    register(Prompt("tidy_collection", "Name, parent and clean up the objects of one collection.", TIDY_COLLECTION,
                    (PromptArgument("collection", "The collection to tidy", required=True,
                                    complete=names_of("collections")),),
                    title="Tidy a collection"))


@hookimpl
def register_apps(register: Callable[[App], None]) -> None:
    register(App(VIEWPORT, "Blender viewport", "blendbus_scene:viewport.html", description=(
        "The latest view of the scene, refreshed when it changes; click an object to select it and tell"
        " the assistant about it; pick the Blender peer; render on demand."), prefers_border=True))
