"""The MCP server: the tools an LLM and a peer see, built from the loaded plugins.

It uses the low-level `mcp.server.Server` because the tool list is dynamic (it comes from
plugins). This module assembles it and answers `tools/call`: who calls, whether they may (role,
profile, schema, size), the run, and the result's shape. The rest is one module per group of MCP
methods: tools.py (the list and the schemas), builtin_tools.py (the tools the core answers itself),
task_handlers.py (tasks, both eras), input_required.py (a 2026-07-28 call that asks), resources.py
(resources, subscriptions, prompts, completions), changes.py (subscriptions/listen, change
notifications), logs.py (logging/setLevel and what a waiting caller hears) and content.py.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import mcp_types as types
from mcp.server import Server
from mcp.server.caching import CacheHint
from mcp.shared.exceptions import MCPError
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from .. import __version__, mcp_apps, meta_tools, paging, tasks, toolsets, verify
from .. import protocol as p
from ..auth import CREDENTIAL_SCOPE_KEY, ROLES, ROLES_SCOPE_KEY, USER_SCOPE_KEY
from ..backends.base import DuplicateJob, JobStoreError
from ..command import Command
from ..completions import Completer
from ..dispatch import LOCAL_CREDENTIAL, Hub, PeerAuthError
from ..encoding import encodes_over
from ..plugins import PluginSet
from ..questions import Questions
from ..sync import HandlerPackages
from ..waiter import RisingProgress
from ..waits import CallerGone, TooManyWaits, Waits, gone_event
from .builtin_tools import LLM, BuiltinTools, Call
from .changes import ChangeFeed
from .content import mcp_content
from .input_required import Rounds
from .logs import CallerNews, ClientLevels
from .resources import RESOURCE_NOT_FOUND, ResourceHandlers
from .task_handlers import TASK_REFUSED, TaskHandlers
from .tools import ToolCatalog

__all__ = ["BlendbusServer", "FORBIDDEN", "LOCAL_USER", "RESOURCE_NOT_FOUND", "TASK_REFUSED"]

log = logging.getLogger(__name__)

LOCAL_USER = "local"
OPEN_METHODS = frozenset({"initialize", "ping", "server/discover", "tools/list", "notifications/initialized",
                          "notifications/cancelled", "notifications/progress"})
"""MCP methods any authenticated caller may use. `tools/call` is decided per tool (`Tool.role`); every
other method (resources, prompts, subscriptions, tasks, and any added later) needs the llm role."""
FORBIDDEN = -32001
"""JSON-RPC error code for a method the caller's token role does not allow."""
LIST_TTL_MS = 10 * 60 * 1000
"""How long a client may reuse a list (tools, resources, prompts): they change only when the server
restarts with other plugins. Private: a token's profile decides what it lists."""
INSTRUCTIONS = """\
blendbus drives a running Blender. Call a blender_* tool directly: blender_get_scene_info,
blender_get_object_info(name=...), blender_execute_code(code=...), and the plugin tools. (If the
list holds only blender_find_tools, blender_describe_tool and blender_call_tool, find a tool by
keywords, read its definition, and call it with blender_call_tool(name, arguments).)
Each Blender tool returns {{status, command, target_uuid, job_id, result, error}}: status "completed"
means result is the handler's return value; any other status is an error, and error says why. Every
Blender tool also takes target_uuid (which peer runs it; needed when several are connected:
blender_list_clients lists them) and timeout_s (seconds to wait for the reply, at most
{max_timeout_s:g}; each tool's default suits it). Each result carries the scene's revision; a tool
that changes the scene also takes expect_revision=<the revision you read>, and then answers status
"conflict" (nothing ran) with what changed if the scene moved since: read again before retrying;
and verify=true, which adds a small picture of the scene after the call to its result.
A call that times out keeps running: fetch it later
with blender_get_job(job_id, wait_s=...), or stop it with blender_cancel_job(job_id). A result too
large for one answer comes back in pages (truncated: true): get the rest with
blender_get_job(job_id, offset=next_offset) until next_offset is null. Before writing bpy code,
blender_lookup_api shows this Blender's exact API."""
"""The server's instructions: what every tool shares (the envelope, target_uuid, timeout_s, paging) is
said here once rather than in each tool's listing (listing.py)."""


class BlendbusServer:
    """Builds and serves the MCP surface of one Hub and one PluginSet."""

    def __init__(self, plugins: PluginSet, hub: Hub, packages: HandlerPackages | None = None, *,
                 tools: str = toolsets.ALL) -> None:
        self.plugins = plugins
        self.hub = hub
        self.packages = packages or HandlerPackages.from_plugins(plugins)
        self.waits = Waits()
        self.tools = ToolCatalog(plugins, hub.limits, lambda validate: BuiltinTools(
            hub, plugins, self.packages, validate, self.waits).tools(), tools)
        self.changes = ChangeFeed(hub, plugins.resources)
        self.log_levels = ClientLevels()
        self.questions = Questions(self.hub)
        self.completer = Completer(plugins, lambda user_id, cmd, arguments, timeout: self.run_command(
            Call(user_id=user_id), cmd, arguments, timeout=timeout))
        self.tasks = TaskHandlers(self)
        self.resources = ResourceHandlers(self)
        self.rounds = Rounds(self, hub.backend.records)
        self.mcp = Server(
            "blendbus",
            version=__version__,
            instructions=INSTRUCTIONS.format(max_timeout_s=hub.limits.max_timeout_s),
            # Without this the SDK lists (and serializes) every tool on each 2026-07-28-era call.
            get_tool_input_schema=self.tools.schema_of,
            on_list_tools=self._list_tools,
            on_call_tool=self._call_tool,
            on_list_resources=self.resources.list_resources,
            on_list_resource_templates=self.resources.list_resource_templates,
            on_read_resource=self.resources.read_resource,
            on_subscribe_resource=self.resources.subscribe,
            on_unsubscribe_resource=self.resources.unsubscribe,
            on_subscriptions_listen=self.resources.listen,
            on_list_prompts=self.resources.list_prompts,
            on_get_prompt=self.resources.get_prompt,
            on_completion=self.resources.complete,
            cache_hints={method: CacheHint(LIST_TTL_MS, "private") for method in
                         ("tools/list", "resources/list", "resources/templates/list", "prompts/list")},
        )
        self.mcp.middleware.insert(0, self._authorize)
        self.mcp.middleware.insert(1, self.tasks.handshake_era)
        self.mcp.middleware[2:2] = self.rounds.middleware()
        self.mcp.extensions[tasks.EXTENSION] = {}
        self.mcp.extensions[mcp_apps.EXTENSION_ID] = {}
        for method, handler in (("tasks/get", self.tasks.get), ("tasks/cancel", self.tasks.cancel),
                                ("tasks/update", self.tasks.update), ("tasks/result", self.tasks.result)):
            self.mcp.add_request_handler(method, tasks.TaskParams, handler)
        self.mcp.add_request_handler("tasks/list", tasks.TaskListParams, self.tasks.list_tasks)
        # Registered, not passed to Server(): 2026-07-28 deprecates it, session-era clients still use it (logs.py).
        self.mcp.add_request_handler("logging/setLevel", types.SetLevelRequestParams, self.log_levels.set_level)

    def shutting_down(self) -> None:
        """The server is stopping: answer open long polls and bus watches, end change streams, so
        that every open request ends well before uvicorn's graceful-shutdown deadline."""
        self.hub.release_polls()
        self.changes.close()
        self.questions.close()

    def session_ended(self, session_id: str) -> None:
        """A session-era client's session ended (DELETE, idle, crash): what was kept for it goes."""
        self.changes.session_ended(session_id)
        self.log_levels.session_ended(session_id)

    # ---- MCP handlers ----------------------------------------------------------------------
    def ensure_started(self) -> None:
        self.hub.start()  # idempotent; the in-memory transports may run each session on its own loop

    @staticmethod
    def identity_of(ctx: Any) -> tuple[str, frozenset[str]]:
        """(user_id, roles) of the caller: from the bearer token over HTTP, `local` otherwise."""
        request = getattr(ctx, "request", None)
        if request is None:
            return LOCAL_USER, frozenset(ROLES)
        return request.scope.get(USER_SCOPE_KEY, LOCAL_USER), request.scope.get(ROLES_SCOPE_KEY, frozenset(ROLES))

    @staticmethod
    def credential_of(ctx: Any) -> str:
        request = getattr(ctx, "request", None)
        return LOCAL_CREDENTIAL if request is None else request.scope.get(CREDENTIAL_SCOPE_KEY, LOCAL_CREDENTIAL)


    async def _authorize(self, ctx: Any, call_next: Any) -> Any:
        """Server middleware: every MCP method but the open ones needs the llm role (tools/call is
        checked per tool in `_call_tool`, so a refused call is a tool error the LLM can read)."""
        if ctx.method not in OPEN_METHODS and ctx.method != "tools/call" and LLM not in self.identity_of(ctx)[1]:
            if ctx.request_id is None:
                return None  # a notification: nothing to answer, nothing done
            raise MCPError(code=FORBIDDEN, message=f"{ctx.method} needs a token with the {LLM} role")
        return await call_next(ctx)

    async def _list_tools(self, ctx: Any, params: Any) -> types.ListToolsResult:
        tools = self.tools.listed(self.identity_of(ctx)[1], self.tools.toolset_of(ctx), apps=mcp_apps.negotiated(ctx))
        return types.ListToolsResult(tools=tools)

    def admit(self, ctx: Any, name: str, arguments: dict[str, Any]) -> tuple[Call, types.CallToolResult | None]:
        """Who calls, and the refusal if they may not call `name` with these arguments (role, profile,
        App-only, schema, size)."""
        if name not in self.tools.schemas:  # as the spec shows it: a JSON-RPC error, not a tool result
            raise MCPError(code=tasks.INVALID_PARAMS, message=self.tools.validate(name, arguments) or name)
        user_id, roles = self.identity_of(ctx)
        call = Call(user_id=user_id, progress=CallerNews(RisingProgress(ctx.session.report_progress),
                                                          self.log_levels.sender(ctx),
                                                          self.questions.asker(ctx, user_id)),
                    credential=self.credential_of(ctx), gone=gone_event(ctx), toolset=self.tools.toolset_of(ctx))
        needed = self.tools.role_of(name)
        if needed not in roles:
            return call, self.plain({"error": f"{name} needs a token with the {needed} role", "code": "Forbidden"},
                                    is_error=True)
        if (needed == LLM and not call.toolset.admits(name) and name not in meta_tools.NAMES
                and name in self.tools.schemas):
            return call, self.plain({"error": f"{name} is not in your tools profile; {meta_tools.FIND} or tools/list"
                                     " shows the tools you have", "code": "Forbidden"}, is_error=True)
        cmd = self.plugins.by_tool(name)
        if cmd is not None and cmd.app_only and not mcp_apps.negotiated(ctx):
            return call, self.plain({"error": mcp_apps.refusal(cmd), "code": "Forbidden"}, is_error=True)
        error = self.tools.validate(name, arguments)
        cap = self.tools.arguments_cap(name)
        if error is None and cap is not None:
            size = len(json.dumps(arguments))
            if size > cap:
                error = f"arguments for {name} are {size} bytes, above the cap of {cap}; send less per call"
        if error is not None:
            return call, self.result(p.envelope(p.INVALID, command=name, error=error))
        return call, None

    async def _call_tool(self, ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        self.ensure_started()
        name, arguments = params.name, dict(params.arguments or {})
        call, refusal = self.admit(ctx, name, arguments)
        if refusal is not None:
            return refusal
        if name == meta_tools.CALL:  # the named tool, admitted as if called directly
            name, arguments = arguments["name"], dict(arguments.get("arguments") or {})
            if name in meta_tools.NAMES:
                return self.plain({"error": f"{meta_tools.CALL} calls Blender tools, not {name}"}, is_error=True)
            call, refusal = self.admit(ctx, name, arguments)
            if refusal is not None:
                return refusal
        try:
            cmd = self.plugins.by_tool(name)
            if cmd is not None and tasks.declared(ctx.meta) and ctx.protocol_version in MODERN_PROTOCOL_VERSIONS:
                return await self.tasks.call(ctx, call, cmd, arguments)
            if cmd is not None:
                checking = arguments.pop(verify.ARGUMENT, False)
                if ctx.protocol_version in MODERN_PROTOCOL_VERSIONS:  # the job may ask, in rounds
                    outcome = await self.rounds.call(ctx, call, cmd, arguments, params)
                    if isinstance(outcome, types.InputRequiredResult):
                        return outcome  # type: ignore[return-value]
                    env = outcome
                else:
                    env = await self.run_command(call, cmd, arguments)
                shots = await verify.picture(self.plugins.commands, lambda c, a: self.run_command(call, c, a), env) \
                    if checking else []
                return self.result(env, images=shots)
            if name in (meta_tools.FIND, meta_tools.DESCRIBE):
                return self.plain(self._disclose(ctx, call, name, arguments))
            tool = self.tools.builtin[name]
            value = await tool.fn(call, arguments)
            return self.result(value, ok=tool.ok) if tool.envelope else self.plain(value)
        except (PeerAuthError, PermissionError, LookupError, ValueError, DuplicateJob, TooManyWaits, CallerGone) as exc:
            return self.plain({"error": str(exc), "code": type(exc).__name__}, is_error=True)
        except JobStoreError as exc:
            log.error("%s", exc)
            if name in p.PEER_TOOLS:  # the peer keeps what it sent, and sends it again (protocol.STORE_FAILED)
                return self.plain({"error": str(exc), "code": p.STORE_FAILED}, is_error=True)
            # An envelope like any failed call's: a status, and what went wrong (the store, not the call).
            return self.result(p.envelope(p.FAILED, error=f"the server could not record the job: {exc}"))

    def _disclose(self, ctx: Any, call: Call, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
        """blender_find_tools and blender_describe_tool, over the tools this caller may call."""
        tools = self.tools.callable_tools(call.toolset, apps=mcp_apps.negotiated(ctx))
        if name == meta_tools.FIND:
            return meta_tools.find(tools, arguments.get("query", ""), arguments.get("limit", meta_tools.DEFAULT_MATCHES))
        return meta_tools.describe(tools, arguments["name"])

    async def run_command(self, call: Call, cmd: Command, arguments: dict[str, Any], *, wait: bool = True,
                          timeout: float | None = None, detach: asyncio.Future[Any] | None = None) -> dict[str, Any]:
        target = arguments.pop("target_uuid", None)
        requested = float(arguments.pop("timeout_s", cmd.timeout))
        expect = arguments.pop(p.EXPECT_REVISION, None)
        arguments.pop(p.VERIFY, None)  # taken by _call_tool; a task or a resource read takes no picture
        payload = p.command_dispatch(p.new_job_id(), cmd.name, arguments, expect)
        return await self.hub.dispatch(
            call.user_id, payload, command=cmd.name, target_uuid=target, timeout=timeout or requested,
            on_progress=call.progress, wait=wait, detach=detach,
        )


    def result(self, env: dict[str, Any], ok: frozenset[str] = frozenset({p.COMPLETED}),
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
        env = paging.inline(env, self.hub.limits.inline_result_max_bytes)
        result = env.get("result")
        text, cap = env, self.hub.limits.text_result_max_bytes
        if cap is not None and encodes_over(result, cap):
            text = {**env, "result": f"(over {cap} bytes: only in structuredContent)"}
        content.insert(0, types.TextContent(type="text", text=json.dumps(text)))
        return types.CallToolResult(content=content, structured_content=env, is_error=env["status"] not in ok)

    @staticmethod
    def plain(value: dict[str, Any], is_error: bool = False) -> types.CallToolResult:
        return types.CallToolResult(
            content=[types.TextContent(type="text", text=json.dumps(value))], structured_content=value, is_error=is_error
        )

