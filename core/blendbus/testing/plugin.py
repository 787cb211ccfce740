"""A plugin of small, real commands for exercising the bus: echo, sleep, fail, progress, size, a typed result."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, Field

from ..command import Command, Preference
from ..hookspecs import hookimpl

HANDLERS = "blendbus.testing.handlers"


class Echo(BaseModel):
    value: Any = Field(description="Returned unchanged")


class Sleep(BaseModel):
    seconds: float = Field(ge=0, le=600, description="How long the handler sleeps")
    steps: int = Field(default=0, ge=0, le=100, description="Progress reports along the way")


class Fail(BaseModel):
    message: str = Field(description="The error the handler raises")


class Log(BaseModel):
    lines: list[tuple[str, str]] = Field(max_length=50, description="[level, message] pairs the handler logs")


class Names(BaseModel):
    names: list[str] = Field(max_length=2000, description="The names listed")


class Question(BaseModel):
    question: str = Field(max_length=1000, description="What to ask the person")


class Page(BaseModel):
    url: str = Field(pattern=r"^https?://", max_length=2048, description="Where to send the person")


class Prompt(BaseModel):
    prompt: str = Field(max_length=1000, description="What to ask the model")


class Broken(BaseModel):
    broken: bool = Field(default=False, description="Return a malformed block instead")


class Size(BaseModel):
    nbytes: int = Field(ge=0, description="Length of the string returned")


class Text(BaseModel):
    text: str = Field(description="The text to count")


class Counted(BaseModel):
    """test_count's result model: its tool lists an outputSchema that clients validate against."""

    characters: int
    words: int


@hookimpl
def register_preferences(register: Callable[[Preference], None]) -> None:
    register(Preference("testing.gated", "bool", False, "Opens the test_gated command"))


@hookimpl
def register_commands(register: Callable[[Command], None]) -> None:
    register(Command("test_noop", "Do nothing (latency floor of a peer round trip).", f"{HANDLERS}:noop",
                     annotations={"read_only": True}))
    register(Command("test_echo", "Return the value given.", f"{HANDLERS}:echo", params=Echo))
    register(Command("test_sleep", "Sleep, reporting progress.", f"{HANDLERS}:sleep", params=Sleep, timeout=30))
    register(Command("test_fail", "Raise an error.", f"{HANDLERS}:fail", params=Fail))
    register(Command("test_log", "Write log lines, then raise a Python warning.", f"{HANDLERS}:log", params=Log))
    register(Command("test_names", "List the names given, as a scene listing would.", f"{HANDLERS}:names",
                     params=Names, annotations={"read_only": True}))
    register(Command("test_size", "Return a string of a given length.", f"{HANDLERS}:size", params=Size))
    register(Command("test_background", "Sleep on a worker thread, then answer on the main thread.",
                     f"{HANDLERS}:background", params=Sleep, timeout=30))
    register(Command("test_gated", "Echo, behind the testing.gated preference.", f"{HANDLERS}:echo",
                     params=Echo, gate="testing.gated"))
    register(Command("test_count", "Count a text's characters and words (a declared result).", f"{HANDLERS}:count",
                     params=Text, result=Counted, annotations={"read_only": True}))
    register(Command("test_ask", "Ask the person behind the caller for a name (elicitation); return the answer.",
                     f"{HANDLERS}:ask", params=Question, timeout=60))
    register(Command("test_visit", "Send the person behind the caller to a page (URL-mode elicitation).",
                     f"{HANDLERS}:visit", params=Page, timeout=60))
    register(Command("test_sample", "Ask the model behind the caller (sampling); return what it said.",
                     f"{HANDLERS}:sample", params=Prompt, timeout=60))
    register(Command("test_content", "Return every kind of MCP content: image, audio, resources, a link.",
                     f"{HANDLERS}:content", params=Broken, annotations={"read_only": True}))
    register(Command("test_image", "Return a small generated PNG as an image result.", f"{HANDLERS}:image",
                     annotations={"read_only": True}))
