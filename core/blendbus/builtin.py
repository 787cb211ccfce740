"""The built-in plugin: the core's own commands and preferences, declared through the same hooks
as any third-party plugin."""

from __future__ import annotations

from collections.abc import Callable

from pydantic import BaseModel, Field

from .command import Command, Preference
from .primitives import Prompt, PromptArgument
from .hookspecs import hookimpl
from .protocol import ACCEPT_HANDLERS_GATE, CODE_GATE, GATE_ASK, OUTPUT_DIR, UNDO_CHECKPOINTS


class ExecuteCode(BaseModel):
    code: str = Field(description="Python to run; bpy, bmesh and mathutils are imported.")


class UndoJob(BaseModel):
    job_id: str = Field(min_length=1, max_length=200)
    cascade: bool = Field(default=False, description="Also revert what changed after it")


class ListChanges(BaseModel):
    since_revision: int = Field(default=0, ge=0)


@hookimpl
def register_preferences(register: Callable[[Preference], None]) -> None:
    register(Preference(
        CODE_GATE, "gate", GATE_ASK,
        "Let LLMs run arbitrary Python in this Blender (blender_execute_code, blender_send_message scripts):"
        " true, false, or ask (the person sees each script and approves it first).",
    ))
    register(Preference(
        ACCEPT_HANDLERS_GATE, "bool", False,
        "Load plugin handler packages the server sends (verified by sha256) when this Blender lacks them.",
    ))
    register(Preference(
        UNDO_CHECKPOINTS, "int", 10,
        "Scene checkpoints a headless Blender keeps for blender_undo_job, one per scene-changing call (0: none).",
    ))
    register(Preference(
        OUTPUT_DIR, "str", "",
        "The folder for files LLMs name (screenshots, renders, exports, input images); every such path must"
        " resolve inside it. Empty: a per-peer folder under the peer's state dir.",
    ))


@hookimpl
def register_commands(register: Callable[[Command], None]) -> None:
    register(Command(
        name="execute_code",
        description="Run Python code inside Blender and return what it prints (stdout). Fresh globals each call;"
        " one call is one undo step.",
        params=ExecuteCode,
        handler="blendbus_addon.handlers:execute_code",
        gate=CODE_GATE,
        timeout=60.0,
        annotations={"destructive": True, "open_world": False},
        undo=True,
    ))
    register(Command(
        name="undo_job",
        description="Revert one earlier call's scene changes (headless Blender); conflict if the scene changed"
        " since, unless cascade.",
        params=UndoJob,
        handler="blendbus_addon.handlers:undo_job",
        timeout=120.0,
        annotations={"destructive": True, "open_world": False},
    ))
    register(Command(
        name="list_changes",
        description="Recent scene changes: revision, job and command (null: the GUI), objects added, removed,"
        " modified.",
        params=ListChanges,
        handler="blendbus_addon.handlers:list_changes",
        timeout=30.0,
        annotations={"read_only": True, "open_world": False},
    ))


BUILD_SCENE = """\
Build this scene in the connected Blender: {description}

Work in this order:
1. Look first: blender_get_scene_info shows what is there already (objects, camera, world, units).
2. Find out which asset sources you may use: call whichever of blender_get_polyhaven_status,
   blender_get_sketchfab_status, blender_get_polypizza_status, blender_get_hyper3d_status and
   blender_get_hunyuan3d_status exist, and use only those that answer enabled. Prefer ready assets
   (Poly Haven HDRIs and textures for lighting and materials; Sketchfab or Poly Pizza models) over
   generated ones (Rodin, Hunyuan3D), which take minutes: start them early and collect them later.
3. Build with the dispatch tools; use blender_execute_code for what no tool covers, one coherent
   step per call. Name what you create. Keep real-world scale (1 unit = 1 m).
4. Check your work: blender_get_viewport_screenshot (or blender_render) to see it, and
   blender_get_object_info for exact transforms. Fix what looks wrong, then check again.
5. Credit every CC-BY asset you used with the attribution its tool returned.
"""
INSPECT_AND_FIX = """\
Inspect the scene in the connected Blender and fix what is wrong{focus}.

1. blender_get_scene_info, then blender_get_object_info on anything suspicious: objects far from the
   others, zero or negative scale, missing materials, lights with no energy, a missing camera.
2. Look at it: blender_get_viewport_screenshot (or blender_render for materials and lighting).
3. Before writing bpy code, check names and parameters against this Blender with
   blender_lookup_api (it answers for the exact version running) where that tool exists.
4. Fix one thing per call, look again, and say what you changed.
"""


@hookimpl
def register_prompts(register: Callable[[Prompt], None]) -> None:
    register(Prompt("build_scene", "Build a scene from a description: check the scene, probe the asset and"
                    " generator plugins, build, then look and fix.", BUILD_SCENE,
                    (PromptArgument("description", "What the scene should contain and look like", required=True),),
                    title="Build a scene"))
    register(Prompt("inspect_and_fix", "Inspect the scene, find what is wrong, and fix it step by step.",
                    INSPECT_AND_FIX, (PromptArgument("focus", "What to look at especially, e.g. ': the lighting'"),),
                    title="Inspect and fix"))
