"""The tool list: every tool's definition and input schema, the profiles that select them, and the
check of a call's arguments against its schema (the low-level SDK server validates none).

A plugin's Command becomes a tool here (listing.py decides its wire form); the built-in tools come
from builtin_tools.py; the meta-tools from meta_tools.py. What a caller lists is cached by its roles,
its profile and whether it speaks MCP Apps: the list changes only when the server restarts.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property
from typing import Any

import jsonschema
import mcp_types as types

from .. import listing, mcp_apps, meta_tools, toolsets
from ..auth import TOOLS_SCOPE_KEY
from ..command import ANNOTATION_KEYS, Command
from ..limits import Limits
from ..plugins import PluginSet
from ..suggest import did_you_mean
from ..toolsets import Toolset
from ..validation import validation_message
from .builtin_tools import LLM, PEER, Tool

ValidateFn = Callable[[str, dict[str, Any]], str | None]


class ToolCatalog:
    """Every tool the server has, and what each caller may list and call."""

    def __init__(self, plugins: PluginSet, limits: Limits, builtin: Callable[[ValidateFn], list[Tool]],
                 tools: str = toolsets.ALL) -> None:
        """`builtin` makes the built-in tools, which check their own arguments with this catalog's `validate`;
        `tools` is the server's profile (a ValueError says what is wrong with it)."""
        self.plugins, self.limits = plugins, limits
        self._profiles: dict[tuple[str, bool], Toolset] = {}
        self._lists: dict[tuple[bool, bool, Toolset], list[types.Tool]] = {}
        self._validators: dict[str, jsonschema.Draft202012Validator] = {}
        self.builtin = {tool.name: tool for tool in builtin(self.validate)}
        self.toolset = self.profile(tools)
        """The server's tools profile (`serve --tools`); a token's profile narrows it."""

    def profile(self, spec: str, *, files: bool = True) -> Toolset:
        """The Toolset a tools profile names (toolsets.py); ValueError says what is wrong with it."""
        if (spec, files) not in self._profiles:
            groups: dict[str, set[str]] = {}
            for cmd in self.plugins.commands.values():
                groups.setdefault(self.plugins.owner[cmd.name].name, set()).add(cmd.tool_name)
            for tool in self.builtin.values():
                if tool.plugin is not None:
                    groups.setdefault(tool.plugin, set()).add(tool.name)
            always = {t.name for t in self.builtin.values() if t.plugin is None and t.role == LLM}
            self._profiles[spec, files] = toolsets.parse(spec, groups, always, files=files)
        return self._profiles[spec, files]

    def toolset_of(self, ctx: Any) -> Toolset:
        """The caller's tools: the server's profile, narrowed by its token's."""
        request = getattr(ctx, "request", None)
        spec = None if request is None else request.scope.get(TOOLS_SCOPE_KEY)
        return self.toolset.narrowed(None if spec is None else self.profile(spec, files=False))

    @cached_property
    def app_tools(self) -> list[types.Tool]:
        """Every tool's definition, linked to its App (mcp_apps.py), the peers' included: what
        `blendbus tools --json` prints. A client lists a part of it (`listed`)."""
        return self._definitions(apps=True)

    def listed(self, roles: frozenset[str], toolset: Toolset, *, apps: bool) -> list[types.Tool]:
        """What tools/list answers a caller: with the llm role, the LLM's tools in its profile
        (compact: the meta-tools); without it, the tools its roles call (a peer's own). App-only
        tools only to an MCP Apps host."""
        key = (LLM in roles, apps, toolset)
        if key not in self._lists:
            if LLM not in roles:
                tools = [t for t in self._definitions(apps=apps) if self.role_of(t.name) in roles]
            elif toolset.compact:
                tools = meta_tools.definitions()
            else:
                tools = self.callable_tools(toolset, apps=apps)
            self._lists[key] = tools
        return self._lists[key]

    def callable_tools(self, toolset: Toolset, *, apps: bool) -> list[types.Tool]:
        """The LLM tools a caller with `toolset` may call, whether listed or behind the meta-tools."""
        return [t for t in self._definitions(apps=apps) if self.role_of(t.name) == LLM and toolset.admits(t.name)]

    def _definitions(self, *, apps: bool) -> list[types.Tool]:
        tools = []
        for cmd in self.plugins.commands.values():
            if cmd.app_only and not apps:
                continue
            tools.append(types.Tool(
                name=cmd.tool_name,
                title=cmd.title,
                description=cmd.description,
                input_schema=listing.listed_input_schema(cmd),
                output_schema=listing.output_schema(cmd),
                annotations=listing.annotations({ANNOTATION_KEYS[k]: v for k, v in cmd.annotations.items()}),
                # 2025-11-25 clients may ask for a task (params.task); others get the result or a timeout.
                execution=types.ToolExecution(task_support="optional"),
                meta=mcp_apps.tool_meta(cmd) if apps else None,
            ))
        for tool in self.builtin.values():
            tools.append(types.Tool(
                name=tool.name,
                description=tool.description,
                input_schema=listing.lean(tool.schema),
                annotations=listing.annotations({ANNOTATION_KEYS[k]: v for k, v in tool.annotations.items()}),
            ))
        return tools

    def dispatch_schema(self, cmd: Command) -> dict[str, Any]:
        """A command's full inputSchema, which calls are validated against: its own params plus the
        arguments every dispatch tool shares."""
        return listing.dispatch_schema(cmd, self.limits.max_timeout_s)

    @cached_property
    def schemas(self) -> dict[str, dict[str, Any]]:
        schemas = {tool.name: tool.schema for tool in self.builtin.values()}
        schemas.update({cmd.tool_name: self.dispatch_schema(cmd) for cmd in self.plugins.commands.values()})
        schemas.update({tool.name: tool.input_schema for tool in meta_tools.definitions()})
        return schemas

    def schema_of(self, tool_name: str) -> dict[str, Any] | None:
        """A tool's input schema by name (None for an unknown tool)."""
        return self.schemas.get(tool_name)

    def validate(self, tool_name: str, arguments: dict[str, Any]) -> str | None:
        """None if the arguments fit the tool's schema, else a message naming each bad field."""
        validator = self._validators.get(tool_name)
        if validator is None:
            schema = self.schema_of(tool_name)
            if schema is None:
                return (f"unknown tool {tool_name!r}{did_you_mean(tool_name, self.schemas)};"
                        " tools/list (or `blendbus tools`) lists them")
            validator = self._validators[tool_name] = jsonschema.Draft202012Validator(schema)
        errors = sorted(validator.iter_errors(arguments), key=lambda e: list(e.absolute_path))
        return validation_message(tool_name, errors) if errors else None

    def role_of(self, tool_name: str) -> str:
        tool = self.builtin.get(tool_name)
        return tool.role if tool is not None else LLM

    def arguments_cap(self, tool_name: str) -> int | None:
        tool = self.builtin.get(tool_name)
        if tool is not None and (tool.max_bytes is not None or tool.role == PEER):
            return tool.max_bytes
        return self.limits.max_arguments_bytes

