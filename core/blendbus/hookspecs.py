"""Every hook a blendbus plugin can implement.

Each hook receives a ``register`` callable and calls it once per thing it declares, so a plugin
never builds or returns lists and blendbus can say which plugin declared what.
"""

from __future__ import annotations

from collections.abc import Callable

import pluggy

from .command import Command, Preference
from .primitives import App, Prompt, Resource

hookspec = pluggy.HookspecMarker("blendbus")
hookimpl = pluggy.HookimplMarker("blendbus")


@hookspec
def register_commands(register: Callable[[Command], None]) -> None:
    """Declare Commands: each becomes an MCP tool on the server and a handler inside Blender."""


@hookspec
def register_preferences(register: Callable[[Preference], None]) -> None:
    """Declare addon preferences (enable switch, API key, mode, URL) that gates and handlers read."""


@hookspec
def register_resources(register: Callable[[Resource], None]) -> None:
    """Declare MCP resources whose contents come from running one of the plugin's commands."""


@hookspec
def register_prompts(register: Callable[[Prompt], None]) -> None:
    """Declare MCP prompts: ready-made instructions an LLM host offers its user."""


@hookspec
def register_apps(register: Callable[[App], None]) -> None:
    """Declare MCP Apps: ui:// documents a host shows beside the results of the Commands that name them."""
