"""The built-in plugin: the core's own commands and preferences, declared through the same hooks
as any third-party plugin."""

from __future__ import annotations

from collections.abc import Callable

from pydantic import BaseModel, Field

from .command import Command, Preference
from .hookspecs import hookimpl
from .protocol import ACCEPT_HANDLERS_GATE, CODE_GATE, OUTPUT_DIR


class ExecuteCode(BaseModel):
    code: str = Field(description="Python run inside Blender with bpy, bmesh and mathutils imported; fresh globals each call.")


@hookimpl
def register_preferences(register: Callable[[Preference], None]) -> None:
    register(Preference(
        CODE_GATE, "bool", False,
        "Let LLMs run arbitrary Python in this Blender (blender_execute_code, blender_send_message scripts).",
    ))
    register(Preference(
        ACCEPT_HANDLERS_GATE, "bool", False,
        "Load plugin handler packages the server sends (verified by sha256) when this Blender lacks them.",
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
        " bpy, bmesh and mathutils are imported. One call is one undo step.",
        params=ExecuteCode,
        handler="blendbus_addon.handlers:execute_code",
        gate=CODE_GATE,
        timeout=60.0,
        annotations={"destructive": True, "open_world": False},
        undo=True,
    ))
