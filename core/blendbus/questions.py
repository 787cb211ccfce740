"""A running job's questions to the person behind its caller (MCP elicitation) or to their model (MCP
sampling), and their answers.

A handler on a peer writes `answer = yield job.ask(message, schema)` or `yield job.sample(...)`; the
question travels as a running update (protocol.ASK_FIELD), across replicas like a log line, to the
call waiting on the job. A session-era (2025-11-25) client is sent `elicitation/create` or
`sampling/createMessage` on the call's own stream, and the answer goes back to the job
(Hub.asked, asked.py); a 2026-07-28 client's call is answered `input_required` instead
(server/input_required.py). A client that cannot be asked (it did not declare the capability)
makes the job hear `cancel`, with the reason, so it fails or falls back on its default instead of
waiting for nobody.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from mcp import types
from mcp.shared.message import ServerMessageMetadata
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from . import protocol as p
from .dispatch import Hub

log = logging.getLogger(__name__)
AskFn = Callable[[str], Awaitable[None]]
"""Takes a question as the note carries it (JSON: job_id, id, then message and schema, or sample)."""


def input_request(question: dict[str, Any]) -> types.ElicitRequest | types.CreateMessageRequest:
    """The MCP request that puts `question` to the client: elicitation (form mode) or sampling."""
    if p.SAMPLE_KEY in question:
        return types.CreateMessageRequest(params=types.CreateMessageRequestParams.model_validate(question[p.SAMPLE_KEY]))
    if "url" in question:  # URL mode: the user goes to a page (a sign-in, a payment), nothing comes back but the action
        return types.ElicitRequest(params=types.ElicitRequestURLParams(
            message=str(question["message"]), url=str(question["url"]),
            elicitation_id=f"{question['job_id']}:{question['id']}"))
    return types.ElicitRequest(params=types.ElicitRequestFormParams(message=str(question["message"]),
                                                                    requested_schema=question["schema"]))


def answer_of(response: Any) -> tuple[str, dict[str, Any] | None]:
    """(action, content) of the client's answer: an elicitation's own, or a sampled message accepted
    whole (role, content, model, stopReason); anything else counts as `cancel`."""
    if isinstance(response, types.ElicitResult):
        return response.action, dict(response.content) if response.content else None
    if isinstance(response, types.CreateMessageResult | types.CreateMessageResultWithTools):
        return "accept", response.model_dump(mode="json", by_alias=True, exclude_none=True)
    if isinstance(response, dict) and response.get("action") in p.ASK_ACTIONS:
        content = response.get("content")
        return response["action"], content if isinstance(content, dict) else None
    if isinstance(response, dict) and "role" in response and "content" in response:
        return "accept", response
    return "cancel", None


def cannot_ask(ctx: Any, question: dict[str, Any], *, in_rounds: bool = False) -> str | None:
    """Why this request's client cannot be put `question`, or None if it can. `in_rounds`: the
    question goes out as an input request (a 2026-07-28 tool call's input_required, or its task's
    inputRequests); any other 2026-07-28 request has no way to ask."""
    sampling = p.SAMPLE_KEY in question
    wanted = (types.ClientCapabilities(sampling=types.SamplingCapability()) if sampling else
              types.ClientCapabilities(elicitation=types.ElicitationCapability()))
    if not ctx.session.check_client_capability(wanted):
        return f"this client did not declare {'sampling' if sampling else 'elicitation'}, so it cannot ask its" \
               f" {'model' if sampling else 'user'}"
    if "url" in question and not _elicits_urls(ctx):
        return "this client did not declare URL-mode elicitation, so it cannot send its user to a page"
    if ctx.protocol_version in MODERN_PROTOCOL_VERSIONS and not in_rounds:
        return f"in MCP {ctx.protocol_version} only a tool call can ask its client; this request is not one"
    return None


def _elicits_urls(ctx: Any) -> bool:
    """Whether the client declared URL-mode elicitation (`elicitation.url`)."""
    capabilities = ctx.session.client_capabilities
    elicitation = capabilities.elicitation if capabilities is not None else None
    return elicitation is not None and elicitation.url is not None


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

    def detach_on(self, ctx: Any, user_id: str, asked: asyncio.Future[dict[str, Any]]) -> AskFn:
        """What a 2026-07-28 call does with a question of its job: its client is asked through an input
        request (input_required, or its task's inputRequests), never on the call's stream. The first
        question it can take ends the call's wait (`asked`); one it cannot take is answered `cancel` at
        once, with why."""

        async def ask(note: str) -> None:
            question = json.loads(note)
            why = cannot_ask(ctx, question, in_rounds=True)
            if why is not None:
                await self.answer(user_id, question, "cancel", None, why)
            elif not asked.done():
                asked.set_result(question)

        return ask

    async def _put(self, ctx: Any, user_id: str, question: dict[str, Any]) -> None:
        why = cannot_ask(ctx, question)
        action, content, reason = "cancel", None, why or ""
        if why is None:
            request = input_request(question)
            expected = types.CreateMessageResult if p.SAMPLE_KEY in question else types.ElicitResult
            try:
                async with asyncio.timeout(p.ASK_TIMEOUT_S):
                    result = await ctx.session.send_request(
                        request, expected, metadata=ServerMessageMetadata(related_request_id=ctx.request_id))
                action, content = answer_of(result)
            except TimeoutError:
                reason = p.UNANSWERED
            except Exception as exc:  # noqa: BLE001 - the client failed to ask: the job must still hear
                reason = f"the client could not ask: {exc}"
        await self.answer(user_id, question, action, content, reason)

    async def respond(self, user_id: str, question: dict[str, Any], response: Any) -> None:
        """Bring the job the client's response to an input request (its `inputResponses` entry)."""
        action, content = answer_of(response)
        await self.answer(user_id, question, action, content, "" if action != "cancel" else "the client sent no answer")

    async def answer(self, user_id: str, question: dict[str, Any], action: str, content: dict[str, Any] | None,
                     reason: str = "") -> None:
        """Bring the job its answer (a job that ended meanwhile needs none)."""
        try:
            await self.hub.asked.answer(user_id, str(question["job_id"]), str(question["id"]),
                                  action if action in p.ASK_ACTIONS else "cancel", content, reason)
        except LookupError:
            log.info("an answer for job %s came after it ended", question["job_id"])

    def close(self) -> None:
        for task in self._asking:
            task.cancel()
