"""A `tools/call`, from admission to answer: who calls (`identity_of`), whether they may (`Calls.admit`:
role, profile, App-only, schema, size), the run on one of their Blender peers (`Calls.run`), and the
shape of what comes back (`tool_result`, `plain`).

Every path that answers with a tool result shapes it here: a plain call, a task's result (tasks/get,
tasks/result, a task notification on a listen stream) and a resource read all go through this module,
so a result looks the same however the client came to it.
"""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any

import mcp_types as types
from mcp.shared.exceptions import MCPError

from .. import mcp_apps, meta_tools, paging, tasks
from .. import protocol as p
from ..auth import CREDENTIAL_SCOPE_KEY, ROLES, ROLES_SCOPE_KEY, USER_SCOPE_KEY
from ..backends.snapshots import Job
from ..command import Command
from ..dispatch import Hub
from ..encoding import encodes_over
from ..limits import Limits
from ..peer_side import LOCAL_CREDENTIAL
from ..plugins import PluginSet
from ..questions import Questions
from ..waiter import RisingProgress
from ..waits import gone_event
from .builtin_tools import LLM, Call
from .content import mcp_content
from .logs import CallerNews, ClientLevels

if TYPE_CHECKING:
    from .tools import ToolCatalog

LOCAL_USER = "local"
"""The user of a caller that reached the server without HTTP (the in-memory and stdio transports)."""


def identity_of(ctx: Any) -> tuple[str, frozenset[str]]:
    """(user_id, roles) of the caller: from the bearer token over HTTP, `local` otherwise."""
    request = getattr(ctx, "request", None)
    if request is None:
        return LOCAL_USER, frozenset(ROLES)
    return request.scope.get(USER_SCOPE_KEY, LOCAL_USER), request.scope.get(ROLES_SCOPE_KEY, frozenset(ROLES))


def credential_of(ctx: Any) -> str:
    """The caller's token digest (auth.CREDENTIAL_SCOPE_KEY): what a peer and a sealed request state bind to."""
    request = getattr(ctx, "request", None)
    return LOCAL_CREDENTIAL if request is None else request.scope.get(CREDENTIAL_SCOPE_KEY, LOCAL_CREDENTIAL)


def plain(value: dict[str, Any], is_error: bool = False) -> types.CallToolResult:
    """A value that is not a job envelope (a refusal, a tool list, a peer's poll) as a tool result."""
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=json.dumps(value))], structured_content=value, is_error=is_error
    )


def tool_result(env: dict[str, Any], limits: Limits, ok: frozenset[str] = frozenset({p.COMPLETED}),
                images: list[dict[str, Any]] | tuple[()] = ()) -> types.CallToolResult:
    """An envelope as a tool result: structuredContent, the same as JSON text, and the content blocks a
    handler returned (images, audio, resources, links: protocol.CONTENT_KEY), then `images` (a
    verification's picture), as MCP content. A result over `Limits.inline_result_max_bytes` is sent
    as its first page (paging.py). With `Limits.text_result_max_bytes` set, a larger result is left
    out of the text block, which says so."""
    result = env.get("result")
    blocks = p.content_blocks(result) if p.content_problem(result) is None else []
    if blocks:  # a copy, not popped: one delivered envelope may answer several waiters of the same job
        env = {**env, "result": p.without_content(result)}
    content: list[Any] = [mcp_content(block) for block in [*blocks, *images]]
    env = paging.inline(env, limits.inline_result_max_bytes)
    result = env.get("result")
    text, cap = env, limits.text_result_max_bytes
    if cap is not None and encodes_over(result, cap):
        text = {**env, "result": f"(over {cap} bytes: only in structuredContent)"}
    content.insert(0, types.TextContent(type="text", text=json.dumps(text)))
    return types.CallToolResult(content=content, structured_content=env, is_error=env["status"] not in ok)


def finished_result(job: Job, limits: Limits) -> types.CallToolResult | None:
    """The tool result a completed task carries (tasks/get, a task notification); None while it works,
    waits on a question or once it was cancelled."""
    return tool_result(job.envelope(), limits) if tasks.status_of(job) == "completed" else None


class Calls:
    """Admits and runs the tool calls of one server, over its Hub."""

    def __init__(self, hub: Hub, plugins: PluginSet, tools: ToolCatalog, log_levels: ClientLevels,
                 questions: Questions) -> None:
        self.hub, self.plugins, self.tools = hub, plugins, tools
        self.log_levels, self.questions = log_levels, questions

    def ensure_started(self) -> None:
        self.hub.start()  # idempotent; the in-memory transports may run each session on its own loop

    def admit(self, ctx: Any, name: str, arguments: dict[str, Any]) -> tuple[Call, types.CallToolResult | None]:
        """Who calls, and the refusal if they may not call `name` with these arguments (role, profile,
        App-only, schema, size)."""
        if name not in self.tools.schemas:  # as the spec shows it: a JSON-RPC error, not a tool result
            raise MCPError(code=tasks.INVALID_PARAMS, message=self.tools.validate(name, arguments) or name)
        user_id, roles = identity_of(ctx)
        call = Call(user_id=user_id, progress=CallerNews(RisingProgress(ctx.session.report_progress),
                                                          self.log_levels.sender(ctx),
                                                          self.questions.asker(ctx, user_id)),
                    credential=credential_of(ctx), gone=gone_event(ctx), toolset=self.tools.toolset_of(ctx))
        needed = self.tools.role_of(name)
        if needed not in roles:
            return call, plain({"error": f"{name} needs a token with the {needed} role", "code": "Forbidden"},
                               is_error=True)
        if (needed == LLM and not call.toolset.admits(name) and name not in meta_tools.NAMES
                and name in self.tools.schemas):
            return call, plain({"error": f"{name} is not in your tools profile; {meta_tools.FIND} or tools/list"
                                " shows the tools you have", "code": "Forbidden"}, is_error=True)
        cmd = self.plugins.by_tool(name)
        if cmd is not None and cmd.app_only and not mcp_apps.negotiated(ctx):
            return call, plain({"error": mcp_apps.refusal(cmd), "code": "Forbidden"}, is_error=True)
        error = self.tools.validate(name, arguments)
        cap = self.tools.arguments_cap(name)
        if error is None and cap is not None:
            size = len(json.dumps(arguments))
            if size > cap:
                error = f"arguments for {name} are {size} bytes, above the cap of {cap}; send less per call"
        if error is not None:
            return call, self.result(p.envelope(p.INVALID, command=name, error=error))
        return call, None

    async def run(self, call: Call, cmd: Command, arguments: dict[str, Any], *, wait: bool = True,
                  timeout: float | None = None, detach: asyncio.Future[Any] | None = None) -> dict[str, Any]:
        """Dispatch `cmd` to the caller's peer: its envelope once it ends, or as it stands after the
        timeout (`wait=False`: at once, queued). The call-wide arguments are taken out here, so the
        handler sees only its own."""
        target = arguments.pop("target_uuid", None)
        requested = float(arguments.pop("timeout_s", cmd.timeout))
        expect = arguments.pop(p.EXPECT_REVISION, None)
        arguments.pop(p.VERIFY, None)  # taken by the server's tools/call; a task or a resource read takes no picture
        payload = p.command_dispatch(p.new_job_id(), cmd.name, arguments, expect)
        return await self.hub.dispatch(
            call.user_id, payload, command=cmd.name, target_uuid=target, timeout=timeout or requested,
            on_progress=call.progress, wait=wait, detach=detach,
        )

    def result(self, env: dict[str, Any], ok: frozenset[str] = frozenset({p.COMPLETED}),
               images: list[dict[str, Any]] | tuple[()] = ()) -> types.CallToolResult:
        """`tool_result` under this server's limits."""
        return tool_result(env, self.hub.limits, ok, images)
