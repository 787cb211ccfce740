"""A running job's questions to the person behind its caller (MCP elicitation), and their answers.

A handler on a peer writes `answer = yield job.ask(message, schema)`; the question travels as a
running update (protocol.ASK_FIELD), across replicas like a log line, to each waiting caller. For a
session-era (2025-11-25) client that declared elicitation, this module sends `elicitation/create`
on the call's own stream and brings the person's answer back to the job (Hub.answer); a 2026-07-28
client's call is answered `input_required` instead (server/input_required.py). A client that cannot
be asked makes the job hear `cancel`, with the reason, so it fails or falls back on its default
instead of waiting for nobody.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from mcp import types
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from . import protocol as p
from .dispatch import Hub

log = logging.getLogger(__name__)
ASK_TIMEOUT_S = 600.0
"""How long a question waits for the person before the job hears `cancel`."""
AskFn = Callable[[str], Awaitable[None]]
"""Takes a question as the note carries it (JSON: job_id, id, message, schema)."""


def cannot_ask(ctx: Any) -> str | None:
    """Why this request's client cannot be asked anything, or None if it can."""
    if not can_elicit(ctx):
        return "this client did not declare elicitation, so it cannot ask its user"
    if ctx.protocol_version in MODERN_PROTOCOL_VERSIONS:  # its plain calls ask in rounds (server/input_required.py)
        return (f"this call runs as an MCP {ctx.protocol_version} task, which cannot ask its user; call the tool"
                " without a task to be asked")
    return None


def can_elicit(ctx: Any) -> bool:
    """Whether this request's client declared elicitation (its session's, or this request's, capabilities)."""
    return bool(ctx.session.check_client_capability(types.ClientCapabilities(elicitation=types.ElicitationCapability())))


class Questions:
    """Puts questions to the clients of one server's calls; each is answered once, in a task of its own
    (the note that carries it must not wait for a person)."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self._asking: set[asyncio.Task[None]] = set()

    def asker(self, ctx: Any, user_id: str) -> AskFn:
        """What a call's CallerNews does with a question of its job."""

        async def ask(note: str) -> None:
            task = asyncio.ensure_future(self._put(ctx, user_id, json.loads(note)))
            self._asking.add(task)
            task.add_done_callback(self._asking.discard)

        return ask

    async def _put(self, ctx: Any, user_id: str, question: dict[str, Any]) -> None:
        job_id, ask_id = str(question["job_id"]), str(question["id"])
        why = cannot_ask(ctx)
        action, content, reason = "cancel", None, why or ""
        if why is None:
            try:
                async with asyncio.timeout(ASK_TIMEOUT_S):
                    result = await ctx.session.elicit_form(str(question["message"]), question["schema"],
                                                           related_request_id=ctx.request_id)
                action, content = result.action, result.content
            except TimeoutError:
                reason = f"nobody answered within {ASK_TIMEOUT_S:.0f} s"
            except Exception as exc:  # noqa: BLE001 - the client failed to ask: the job must still hear
                reason = f"the client could not ask its user: {exc}"
        try:
            await self.hub.answer(user_id, job_id, ask_id, action if action in p.ASK_ACTIONS else "cancel",
                                  dict(content) if content else None, reason)
        except LookupError:
            log.info("an answer for job %s came after it ended", job_id)

    def close(self) -> None:
        for task in self._asking:
            task.cancel()
