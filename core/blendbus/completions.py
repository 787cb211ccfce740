"""`completion/complete`: a host's autocomplete for prompt arguments and resource-template variables.

An argument declares where its values come from (`command.Completion`): a read-only command run on
the caller's own Blender. Its candidates are kept briefly per user, since a host asks again at
every keystroke, and matched against what the user typed: those that start with it first, then
those that contain it, at most MAX_VALUES (the spec's cap).

An argument without a source, or a prompt or template the server does not have, completes to
nothing, as does a Blender that is not there or fails: autocomplete is a hint, never an error.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

import mcp_types as types

from . import protocol as p
from .command import Command
from .primitives import Completion
from .plugins import PluginSet

MAX_VALUES = 100
"""Values one answer carries at most (MCP's limit); `total` and `hasMore` tell the host there are more."""
FRESH_S = 2.0
"""How long one user's candidates from one source are reused: the keystrokes of one word."""
KEPT = 1024
"""Candidate lists kept at most across users."""
TIMEOUT_S = 10.0
"""How long a completion waits for Blender: a host that asks while Blender is busy gets nothing."""

RunFn = Callable[[str, Command, dict[str, Any], float], Awaitable[dict[str, Any]]]
"""Runs a command for a user on their bus (server/calls.py Calls.run): its envelope."""


class Completer:
    """Answers `completion/complete` from the plugins' declared sources."""

    def __init__(self, plugins: PluginSet, run: RunFn) -> None:
        self.plugins, self.run = plugins, run
        self._kept: dict[tuple[str, str, str], tuple[float, list[str]]] = {}

    def source(self, ref: types.PromptReference | types.ResourceTemplateReference, argument: str) -> Completion | None:
        """The declared source of `argument` of the prompt or resource template `ref` names."""
        if isinstance(ref, types.PromptReference):
            prompt = self.plugins.prompts.get(ref.name)
            return next((a.complete for a in prompt.arguments if a.name == argument), None) if prompt else None
        resource = next((r for r in self.plugins.resources if r.uri == ref.uri), None)
        return resource.complete.get(argument) if resource else None

    async def complete(self, user_id: str, params: types.CompleteRequestParams) -> types.CompleteResult:
        source = self.source(params.ref, params.argument.name)
        values = await self.candidates(user_id, source) if source is not None else []
        typed = params.argument.value.casefold()
        first = [v for v in values if v.casefold().startswith(typed)]
        then = [v for v in values if typed in v.casefold() and not v.casefold().startswith(typed)]
        hits = first + then
        return types.CompleteResult(completion=types.Completion(
            values=hits[:MAX_VALUES], total=len(hits), has_more=len(hits) > MAX_VALUES))

    async def candidates(self, user_id: str, source: Completion) -> list[str]:
        """What `source` offers this user now (kept for FRESH_S)."""
        key = (user_id, source.command, json.dumps(source.params, sort_keys=True))
        now = time.monotonic()
        kept = self._kept.get(key)
        if kept is not None and now - kept[0] < FRESH_S:
            return kept[1]
        cmd = self.plugins.commands.get(source.command)
        if cmd is None:
            return []
        env = await self.run(user_id, cmd, dict(source.params), TIMEOUT_S)
        values = source.candidates(env["result"]) if env["status"] == p.COMPLETED else []
        if len(self._kept) >= KEPT:
            self._kept = {k: v for k, v in self._kept.items() if now - v[0] < FRESH_S}
        if len(self._kept) < KEPT:
            self._kept[key] = (now, values)
        return values
