"""blendbus-hello: a blendbus plugin."""

from __future__ import annotations

from collections.abc import Callable

from pydantic import BaseModel, Field

from blendbus import Command, Preference, hookimpl

__version__ = "0.1.0"
GATE = "hello.enabled"


class Greet(BaseModel):
    name: str = Field(min_length=1, max_length=100, description="Who to greet")


@hookimpl
def register_preferences(register: Callable[[Preference], None]) -> None:
    register(Preference(GATE, "bool", False, "Allow the hello tools"))


@hookimpl
def register_commands(register: Callable[[Command], None]) -> None:
    register(Command(
        name="hello_greet",
        description="Greet someone from inside Blender; says which Blender and how many objects it has.",
        params=Greet,
        handler="blendbus_hello.addon.handlers:greet",
        gate=GATE,
        timeout=30.0,
        annotations={"read_only": True},
    ))
