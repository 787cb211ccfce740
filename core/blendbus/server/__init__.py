"""The MCP server: the tools an LLM and a peer see, built from the loaded plugins.

It uses the low-level `mcp.server.Server` because the tool list is dynamic (it comes from
plugins). This module assembles it and routes a `tools/call`: to a task, to a call that may ask in
rounds, to a plain call, or to a built-in tool. The rest is one module per group of MCP methods:
calls.py (who calls, whether they may, the run, the result's shape), tools.py (the list and the
schemas), builtin_tools.py (the tools the core answers itself),
task_handlers.py (tasks, both eras), input_required.py (a 2026-07-28 call that asks), resources.py
(resources, subscriptions, prompts, completions), changes.py (subscriptions/listen, change
notifications), logs.py (logging/setLevel and what a waiting caller hears) and content.py.
"""

from __future__ import annotations

import logging
from typing import Any

import mcp_types as types
from mcp.server import Server
from mcp.server.caching import CacheHint
from mcp.shared.exceptions import MCPError
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from .. import __version__, mcp_apps, meta_tools, tasks, toolsets, verify
from .. import protocol as p
from ..backends.base import DuplicateJob, JobStoreError
from ..completions import Completer
from ..dispatch import Hub, PeerAuthError
from ..plugins import PluginSet
from ..questions import Questions
from ..sync import HandlerPackages
from ..waits import CallerGone, TooManyWaits, Waits
from .builtin_tools import LLM, BuiltinTools, Call
from .calls import LOCAL_USER, Calls, identity_of, plain
from .changes import ChangeFeed
from .input_required import Rounds
from .logs import ClientLevels
from .resources import RESOURCE_NOT_FOUND, ResourceHandlers
from .task_handlers import TASK_REFUSED, TaskHandlers
from .tools import ToolCatalog

__all__ = ["BlendbusServer", "FORBIDDEN", "LOCAL_USER", "RESOURCE_NOT_FOUND", "TASK_REFUSED"]

log = logging.getLogger(__name__)
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
        self.calls = Calls(hub, plugins, self.tools, self.log_levels, self.questions)
        self.completer = Completer(plugins, lambda user_id, cmd, arguments, timeout: self.calls.run(
            Call(user_id=user_id), cmd, arguments, timeout=timeout))
        self.tasks = TaskHandlers(self.calls, self.questions, self.waits)
        self.resources = ResourceHandlers(self.calls, self.changes, self.completer)
        self.rounds = Rounds(self.calls, hub.backend.records)
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
    async def _authorize(self, ctx: Any, call_next: Any) -> Any:
        """Server middleware: every MCP method but the open ones needs the llm role (tools/call is
        checked per tool in `_call_tool`, so a refused call is a tool error the LLM can read)."""
        if ctx.method not in OPEN_METHODS and ctx.method != "tools/call" and LLM not in identity_of(ctx)[1]:
            if ctx.request_id is None:
                return None  # a notification: nothing to answer, nothing done
            raise MCPError(code=FORBIDDEN, message=f"{ctx.method} needs a token with the {LLM} role")
        return await call_next(ctx)

    async def _list_tools(self, ctx: Any, params: Any) -> types.ListToolsResult:
        tools = self.tools.listed(identity_of(ctx)[1], self.tools.toolset_of(ctx), apps=mcp_apps.negotiated(ctx))
        return types.ListToolsResult(tools=tools)

    async def _call_tool(self, ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        self.calls.ensure_started()
        name, arguments = params.name, dict(params.arguments or {})
        call, refusal = self.calls.admit(ctx, name, arguments)
        if refusal is not None:
            return refusal
        if name == meta_tools.CALL:  # the named tool, admitted as if called directly
            name, arguments = arguments["name"], dict(arguments.get("arguments") or {})
            if name in meta_tools.NAMES:
                return plain({"error": f"{meta_tools.CALL} calls Blender tools, not {name}"}, is_error=True)
            call, refusal = self.calls.admit(ctx, name, arguments)
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
                    env = await self.calls.run(call, cmd, arguments)
                shots = await verify.picture(self.plugins.commands, lambda c, a: self.calls.run(call, c, a), env) \
                    if checking else []
                return self.calls.result(env, images=shots)
            if name in (meta_tools.FIND, meta_tools.DESCRIBE):
                return plain(self._disclose(ctx, call, name, arguments))
            tool = self.tools.builtin[name]
            value = await tool.fn(call, arguments)
            return self.calls.result(value, ok=tool.ok) if tool.envelope else plain(value)
        except (PeerAuthError, PermissionError, LookupError, ValueError, DuplicateJob, TooManyWaits, CallerGone) as exc:
            return plain({"error": str(exc), "code": type(exc).__name__}, is_error=True)
        except JobStoreError as exc:
            log.error("%s", exc)
            if name in p.PEER_TOOLS:  # the peer keeps what it sent, and sends it again (protocol.STORE_FAILED)
                return plain({"error": str(exc), "code": p.STORE_FAILED}, is_error=True)
            # An envelope like any failed call's: a status, and what went wrong (the store, not the call).
            return self.calls.result(p.envelope(p.FAILED, error=f"the server could not record the job: {exc}"))

    def _disclose(self, ctx: Any, call: Call, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
        """blender_find_tools and blender_describe_tool, over the tools this caller may call."""
        tools = self.tools.callable_tools(call.toolset, apps=mcp_apps.negotiated(ctx))
        if name == meta_tools.FIND:
            return meta_tools.find(tools, arguments.get("query", ""), arguments.get("limit", meta_tools.DEFAULT_MATCHES))
        return meta_tools.describe(tools, arguments["name"])
