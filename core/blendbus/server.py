"""The MCP server: the tools an LLM and a peer see, built from the loaded plugins.

It uses the low-level `mcp.server.Server` because the tool list is dynamic (it comes from
plugins). The SDK does not validate arguments there, so every call is checked against its JSON
schema here, before anything is dispatched.
"""

from __future__ import annotations

import json
import logging
import time
from functools import cached_property
from typing import Any

import jsonschema
import mcp_types as types
from mcp.server import Server
from mcp.server.caching import CacheHint
from mcp_types.version import MODERN_PROTOCOL_VERSIONS
from mcp.shared.exceptions import MCPError
from mcp.shared.uri_template import UriTemplate

from . import __version__
from . import listing, mcp_apps, meta_tools, paging, tasks, toolsets, verify
from . import protocol as p
from .command import ANNOTATION_KEYS, Command, Resource
from .dispatch import LOCAL_CREDENTIAL, Hub, PeerAuthError
from .encoding import encodes_over
from .backends.base import DuplicateJob, JobStoreError
from .auth import CREDENTIAL_SCOPE_KEY, ROLES, ROLES_SCOPE_KEY, TOOLS_SCOPE_KEY, USER_SCOPE_KEY
from .plugins import PluginSet
from .suggest import did_you_mean
from .validation import validation_message
from .waiter import RisingProgress
from .logs import CallerNews, ClientLevels
from .completions import Completer
from .sync import HandlerPackages
from .builtin_tools import LLM, PEER, WAITS, BuiltinTools, Call
from .toolsets import Toolset
from .changes import ChangeFeed, TooManySubscriptions
from .waits import CallerGone, TooManyWaits, Waits, gone_event, while_present

log = logging.getLogger(__name__)

LOCAL_USER = "local"
OPEN_METHODS = frozenset({"initialize", "ping", "server/discover", "tools/list", "notifications/initialized",
                          "notifications/cancelled", "notifications/progress"})
"""MCP methods any authenticated caller may use. `tools/call` is decided per tool (`Tool.role`); every
other method (resources, prompts, subscriptions, tasks, and any added later) needs the llm role."""
FORBIDDEN = -32001
"""JSON-RPC error code for a method the caller's token role does not allow."""
RESOURCE_NOT_FOUND = -32002
"""JSON-RPC error code for a resource that is not there (the MCP spec's)."""
TASK_REFUSED = -32000
"""JSON-RPC error code for a task request that cannot be served now: a task-augmented call that could
not be queued (no peer, several, busy; `data` is the envelope, with its status), or a `tasks/result`
beyond the caller's waits or its time bound (call it again later)."""
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
        self.builtin = {t.name: t for t in BuiltinTools(hub, plugins, self.packages, self.validate, self.waits).tools()}
        self._profiles: dict[tuple[str, bool], Toolset] = {}
        self.toolset = self.profile(tools)
        """The server's tools profile (`serve --tools`); a token's profile narrows it."""
        self._lists: dict[tuple[bool, bool, Toolset], list[types.Tool]] = {}
        self.changes = ChangeFeed(hub, plugins.resources)
        self.log_levels = ClientLevels()
        self.completer = Completer(plugins, lambda user_id, cmd, arguments, timeout: self.run_command(
            Call(user_id=user_id), cmd, arguments, timeout=timeout))
        self._validators: dict[str, jsonschema.Draft202012Validator] = {}
        self.mcp = Server(
            "blendbus",
            version=__version__,
            instructions=INSTRUCTIONS.format(max_timeout_s=hub.limits.max_timeout_s),
            # Without this the SDK lists (and serializes) every tool on each 2026-07-28-era call.
            get_tool_input_schema=self.schema_of,
            on_list_tools=self._list_tools,
            on_call_tool=self._call_tool,
            on_list_resources=self._list_resources,
            on_list_resource_templates=self._list_resource_templates,
            on_read_resource=self._read_resource,
            on_subscribe_resource=self._subscribe,
            on_unsubscribe_resource=self._unsubscribe,
            on_subscriptions_listen=self._listen,
            on_list_prompts=self._list_prompts,
            on_get_prompt=self._get_prompt,
            on_completion=self._complete,
            cache_hints={method: CacheHint(LIST_TTL_MS, "private") for method in
                         ("tools/list", "resources/list", "resources/templates/list", "prompts/list")},
        )
        self.mcp.middleware.insert(0, self._authorize)
        self.mcp.middleware.insert(1, self._session_era_tasks)
        self.mcp.extensions[tasks.EXTENSION] = {}
        self.mcp.extensions[mcp_apps.EXTENSION_ID] = {}
        for method, handler in (("tasks/get", self._tasks_get), ("tasks/cancel", self._tasks_cancel),
                                ("tasks/update", self._tasks_update), ("tasks/result", self._tasks_result)):
            self.mcp.add_request_handler(method, tasks.TaskParams, handler)
        self.mcp.add_request_handler("tasks/list", tasks.TaskListParams, self._tasks_list)
        # Registered, not passed to Server(): 2026-07-28 deprecates it, session-era clients still use it (logs.py).
        self.mcp.add_request_handler("logging/setLevel", types.SetLevelRequestParams, self.log_levels.set_level)

    def shutting_down(self) -> None:
        """The server is stopping: answer open long polls and bus watches, end change streams, so
        that every open request ends well before uvicorn's graceful-shutdown deadline."""
        self.hub.release_polls()
        self.changes.close()

    # ---- tool list -------------------------------------------------------------------------
    def session_ended(self, session_id: str) -> None:
        """A session-era client's session ended (DELETE, idle, crash): what was kept for it goes."""
        self.changes.session_ended(session_id)
        self.log_levels.session_ended(session_id)

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
        return listing.dispatch_schema(cmd, self.hub.limits.max_timeout_s)

    @cached_property
    def _schemas(self) -> dict[str, dict[str, Any]]:
        schemas = {tool.name: tool.schema for tool in self.builtin.values()}
        schemas.update({cmd.tool_name: self.dispatch_schema(cmd) for cmd in self.plugins.commands.values()})
        schemas.update({tool.name: tool.input_schema for tool in meta_tools.definitions()})
        return schemas

    def schema_of(self, tool_name: str) -> dict[str, Any] | None:
        """A tool's input schema by name (None for an unknown tool)."""
        return self._schemas.get(tool_name)

    def validate(self, tool_name: str, arguments: dict[str, Any]) -> str | None:
        """None if the arguments fit the tool's schema, else a message naming each bad field."""
        validator = self._validators.get(tool_name)
        if validator is None:
            schema = self.schema_of(tool_name)
            if schema is None:
                return (f"unknown tool {tool_name!r}{did_you_mean(tool_name, self._schemas)};"
                        " tools/list (or `blendbus tools`) lists them")
            validator = self._validators[tool_name] = jsonschema.Draft202012Validator(schema)
        errors = sorted(validator.iter_errors(arguments), key=lambda e: list(e.absolute_path))
        return validation_message(tool_name, errors) if errors else None

    # ---- MCP handlers ----------------------------------------------------------------------
    def _ensure_started(self) -> None:
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

    def role_of(self, tool_name: str) -> str:
        tool = self.builtin.get(tool_name)
        return tool.role if tool is not None else LLM

    def arguments_cap(self, tool_name: str) -> int | None:
        tool = self.builtin.get(tool_name)
        if tool is not None and (tool.max_bytes is not None or tool.role == PEER):
            return tool.max_bytes
        return self.hub.limits.max_arguments_bytes

    async def _authorize(self, ctx: Any, call_next: Any) -> Any:
        """Server middleware: every MCP method but the open ones needs the llm role (tools/call is
        checked per tool in `_call_tool`, so a refused call is a tool error the LLM can read)."""
        if ctx.method not in OPEN_METHODS and ctx.method != "tools/call" and LLM not in self.identity_of(ctx)[1]:
            if ctx.request_id is None:
                return None  # a notification: nothing to answer, nothing done
            raise MCPError(code=FORBIDDEN, message=f"{ctx.method} needs a token with the {LLM} role")
        return await call_next(ctx)

    async def _list_tools(self, ctx: Any, params: Any) -> types.ListToolsResult:
        tools = self.listed(self.identity_of(ctx)[1], self.toolset_of(ctx), apps=mcp_apps.negotiated(ctx))
        return types.ListToolsResult(tools=tools)

    def _admit(self, ctx: Any, name: str, arguments: dict[str, Any]) -> tuple[Call, types.CallToolResult | None]:
        """Who calls, and the refusal if they may not call `name` with these arguments (role, profile,
        App-only, schema, size)."""
        if name not in self._schemas:  # as the spec shows it: a JSON-RPC error, not a tool result
            raise MCPError(code=tasks.INVALID_PARAMS, message=self.validate(name, arguments) or name)
        user_id, roles = self.identity_of(ctx)
        call = Call(user_id=user_id, progress=CallerNews(RisingProgress(ctx.session.report_progress),
                                                          self.log_levels.sender(ctx)),
                    credential=self.credential_of(ctx), gone=gone_event(ctx), toolset=self.toolset_of(ctx))
        needed = self.role_of(name)
        if needed not in roles:
            return call, self.plain({"error": f"{name} needs a token with the {needed} role", "code": "Forbidden"},
                                    is_error=True)
        if needed == LLM and not call.toolset.admits(name) and name not in meta_tools.NAMES and name in self._schemas:
            return call, self.plain({"error": f"{name} is not in your tools profile; {meta_tools.FIND} or tools/list"
                                     " shows the tools you have", "code": "Forbidden"}, is_error=True)
        cmd = self.plugins.by_tool(name)
        if cmd is not None and cmd.app_only and not mcp_apps.negotiated(ctx):
            return call, self.plain({"error": mcp_apps.refusal(cmd), "code": "Forbidden"}, is_error=True)
        error = self.validate(name, arguments)
        cap = self.arguments_cap(name)
        if error is None and cap is not None:
            size = len(json.dumps(arguments))
            if size > cap:
                error = f"arguments for {name} are {size} bytes, above the cap of {cap}; send less per call"
        if error is not None:
            return call, self.result(p.envelope(p.INVALID, command=name, error=error))
        return call, None

    async def _call_tool(self, ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        self._ensure_started()
        name, arguments = params.name, dict(params.arguments or {})
        call, refusal = self._admit(ctx, name, arguments)
        if refusal is not None:
            return refusal
        if name == meta_tools.CALL:  # the named tool, admitted as if called directly
            name, arguments = arguments["name"], dict(arguments.get("arguments") or {})
            if name in meta_tools.NAMES:
                return self.plain({"error": f"{meta_tools.CALL} calls Blender tools, not {name}"}, is_error=True)
            call, refusal = self._admit(ctx, name, arguments)
            if refusal is not None:
                return refusal
        try:
            cmd = self.plugins.by_tool(name)
            if cmd is not None and tasks.declared(ctx.meta) and ctx.protocol_version in MODERN_PROTOCOL_VERSIONS:
                return await self._call_as_task(call, cmd, arguments)
            if cmd is not None:
                checking = arguments.pop(verify.ARGUMENT, False)
                env = await self.run_command(call, cmd, arguments)
                shots = await verify.picture(self.plugins.commands, lambda c, a: self.run_command(call, c, a), env) \
                    if checking else []
                return self.result(env, images=shots)
            if name in (meta_tools.FIND, meta_tools.DESCRIBE):
                return self.plain(self._disclose(ctx, call, name, arguments))
            tool = self.builtin[name]
            value = await tool.fn(call, arguments)
            return self.result(value, ok=tool.ok) if tool.envelope else self.plain(value)
        except (PeerAuthError, PermissionError, LookupError, ValueError, DuplicateJob, TooManyWaits, CallerGone) as exc:
            return self.plain({"error": str(exc), "code": type(exc).__name__}, is_error=True)
        except JobStoreError as exc:
            log.error("%s", exc)
            return self.plain({"error": f"the server could not record the job: {exc}"}, is_error=True)

    def _disclose(self, ctx: Any, call: Call, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
        """blender_find_tools and blender_describe_tool, over the tools this caller may call."""
        tools = self.callable_tools(call.toolset, apps=mcp_apps.negotiated(ctx))
        if name == meta_tools.FIND:
            return meta_tools.find(tools, arguments.get("query", ""), arguments.get("limit", meta_tools.DEFAULT_MATCHES))
        return meta_tools.describe(tools, arguments["name"])

    async def run_command(self, call: Call, cmd: Command, arguments: dict[str, Any], *, wait: bool = True,
                          timeout: float | None = None) -> dict[str, Any]:
        target = arguments.pop("target_uuid", None)
        requested = float(arguments.pop("timeout_s", cmd.timeout))
        expect = arguments.pop(p.EXPECT_REVISION, None)
        arguments.pop(p.VERIFY, None)  # taken by _call_tool; a task or a resource read takes no picture
        payload = p.command_dispatch(p.new_job_id(), cmd.name, arguments, expect)
        return await self.hub.dispatch(
            call.user_id, payload, command=cmd.name, target_uuid=target, timeout=timeout or requested,
            on_progress=call.progress, wait=wait,
        )

    async def _call_as_task(self, call: Call, cmd: Command, arguments: dict[str, Any]) -> Any:
        """For a client that declared the tasks extension: the result if the job ends within the grace,
        else (or at once, for a long-running Command) a task handle on the job."""
        grace = self.hub.limits.task_after_s
        if cmd.long_running or grace <= 0:
            env = await self.run_command(call, cmd, arguments, wait=False)
        else:
            env = await self.run_command(call, cmd, arguments, timeout=grace)
        job = await self.hub.jobs.get(call.user_id, env["job_id"]) if env["job_id"] else None
        if job is None or env["status"] not in (p.TIMEOUT, p.QUEUED):
            return self.result(env)
        return tasks.created(job, self.task_ttl_ms)

    @property
    def task_ttl_ms(self) -> int:
        """Tasks live as long as their jobs are kept."""
        return int(self.hub.jobs.max_age_s * 1000)

    @staticmethod
    def _session_era(ctx: Any) -> bool:
        return ctx.protocol_version not in MODERN_PROTOCOL_VERSIONS

    async def _task_job(self, ctx: Any, params: tasks.TaskParams, method: str) -> Any:
        """The caller's job behind a task id. The 2026-07-28 era requires the extension on each request;
        2025-11-25 clients negotiated `capabilities.tasks` once, in the handshake."""
        if not self._session_era(ctx):
            tasks.require_extension(ctx.meta, method)
        job = await self.hub.jobs.get(self.identity_of(ctx)[0], params.task_id)
        if job is None:
            raise tasks.unknown(params.task_id)
        return job

    async def _tasks_get(self, ctx: Any, params: tasks.TaskParams) -> dict[str, Any]:
        job = await self._task_job(ctx, params, "tasks/get")
        if self._session_era(ctx):
            return tasks.legacy_task(job, self.task_ttl_ms)
        return tasks.detailed(job, self.task_ttl_ms, self.result)

    async def _tasks_cancel(self, ctx: Any, params: tasks.TaskParams) -> dict[str, Any]:
        job = await self._task_job(ctx, params, "tasks/cancel")
        if job.status in p.OPEN_STATUSES:
            await self.hub.cancel_job(job.user_id, job.job_id)
        elif self._session_era(ctx):
            raise MCPError(code=tasks.INVALID_PARAMS, message=f"task {job.job_id!r} is already {tasks.status_of(job)}")
        if self._session_era(ctx):
            return tasks.legacy_task(await self.hub.jobs.get(job.user_id, job.job_id) or job, self.task_ttl_ms)
        return {}

    async def _tasks_update(self, ctx: Any, params: tasks.TaskParams) -> dict[str, Any]:
        await self._task_job(ctx, params, "tasks/update")
        return {}  # no blendbus job asks for input: there is nothing to update

    async def _tasks_result(self, ctx: Any, params: tasks.TaskParams) -> dict[str, Any]:
        """2025-11-25: wait until the task is terminal, then its CallToolResult (told first, as
        notifications/tasks/status, that it ended). The wait is one of the caller's long waits: capped,
        bounded by `max_task_result_wait_s`, and over when its client hangs up or its session ends."""
        job = await self._task_job(ctx, params, "tasks/result")
        bound = self.hub.limits.max_task_result_wait_s
        try:
            with self.waits.hold(job.user_id, WAITS, self.hub.limits.max_waits_per_user):
                env = await while_present(gone_event(ctx), self._until_ended(job.user_id, job.job_id, bound))
        except (TooManyWaits, CallerGone) as exc:
            raise MCPError(code=TASK_REFUSED, message=str(exc)) from None
        if env["status"] in p.OPEN_STATUSES:
            raise MCPError(code=TASK_REFUSED, message=f"task {job.job_id!r} is still working after {bound:g}s;"
                           " call tasks/result again, or poll tasks/get")
        final = await self.hub.jobs.get(job.user_id, job.job_id) or job
        await self._tell_status(ctx, tasks.legacy_task(final, self.task_ttl_ms))
        result = self.result(env).model_dump(by_alias=True, mode="json", exclude_none=True)
        result["_meta"] = {**result.get("_meta", {}), tasks.RELATED_TASK_META: {"taskId": job.job_id}}
        return result

    async def _until_ended(self, user_id: str, job_id: str, bound_s: float) -> dict[str, Any]:
        """The job's envelope once it ended, or as it stands after `bound_s`."""
        deadline = time.monotonic() + bound_s
        env = await self.hub.get_job(user_id, job_id)
        while env["status"] in p.OPEN_STATUSES and (remaining := deadline - time.monotonic()) > 0:
            env = await self.hub.get_job(user_id, job_id, wait_s=min(remaining, self.hub.limits.max_wait_s))
        return env

    async def _tasks_list(self, ctx: Any, params: tasks.TaskListParams) -> dict[str, Any]:
        """The caller's own tasks (every job is one), newest first, a page at a time."""
        if not self._session_era(ctx):
            tasks.require_extension(ctx.meta, "tasks/list")
        jobs = await self.hub.jobs.recent(self.identity_of(ctx)[0], tasks.LIST_PAGE, tasks.cursor_time(params.cursor))
        shape = tasks.legacy_task if self._session_era(ctx) else tasks.task
        listed: dict[str, Any] = {"tasks": [shape(job, self.task_ttl_ms) for job in jobs]}
        if (cursor := tasks.page_cursor(jobs)) is not None:
            listed["nextCursor"] = cursor
        return listed

    async def _tell_status(self, ctx: Any, task: dict[str, Any]) -> None:
        """notifications/tasks/status on the request's stream; a client that cannot take it loses nothing."""
        try:
            await ctx.session.send_notification(types.TaskStatusNotification(
                params=types.TaskStatusNotificationParams.model_validate(task)), related_request_id=ctx.request_id)
        except Exception as exc:  # noqa: BLE001 - the status is also in tasks/get; the result must still go out
            log.debug("notifications/tasks/status not sent: %s", exc)

    async def _session_era_tasks(self, ctx: Any, call_next: Any) -> Any:
        """Server middleware for 2025-11-25 tasks: advertise `capabilities.tasks` (and the MCP Apps
        extension) in the handshake, and answer a task-augmented tools/call with a CreateTaskResult.
        That answer is made here, not in the tools/call handler, because the SDK sieves a handler's
        tools/call result to a CallToolResult on handshake-era connections; a middleware's own result
        goes out as it is."""
        if ctx.method == "initialize":
            result = await call_next(ctx)
            if isinstance(result, dict) and result.get("protocolVersion") == tasks.LEGACY_VERSION:
                capabilities = result.get("capabilities", {})
                # MCP Apps is negotiated through `extensions` in this handshake too (SEP-1724).
                extensions = {**capabilities.get("extensions", {}), mcp_apps.EXTENSION_ID: {}}
                result["capabilities"] = {**capabilities, "tasks": tasks.LEGACY_CAPABILITY, "extensions": extensions}
            return result
        if (ctx.method == "tools/call" and self._session_era(ctx) and isinstance(ctx.params, dict)
                and ctx.params.get("task") is not None):
            return await self._call_as_legacy_task(ctx)
        return await call_next(ctx)

    async def _call_as_legacy_task(self, ctx: Any) -> dict[str, Any]:
        """A 2025-11-25 task-augmented tools/call: the job is queued and its task returned at once."""
        self._ensure_started()
        try:
            params = types.CallToolRequestParams.model_validate(ctx.params, by_name=False)
        except ValueError as exc:
            raise MCPError(code=tasks.INVALID_PARAMS, message=f"invalid tools/call params: {exc}") from None
        name, arguments = params.name, dict(params.arguments or {})
        cmd = self.plugins.by_tool(name)
        if cmd is None:
            raise MCPError(code=tasks.INVALID_PARAMS, message=f"{name} does not run as a task (its"
                           " execution.taskSupport is not set); call it without `task`")
        call, refusal = self._admit(ctx, name, arguments)
        if refusal is not None:
            raise MCPError(code=tasks.INVALID_PARAMS, message=str((refusal.structured_content or {}).get("error")))
        try:
            env = await self.run_command(call, cmd, arguments, wait=False)
        except (PermissionError, LookupError, ValueError, JobStoreError) as exc:
            raise MCPError(code=TASK_REFUSED, message=str(exc)) from None
        job = await self.hub.jobs.get(call.user_id, env["job_id"]) if env["job_id"] else None
        if job is None:  # nothing was queued: no peer, several, busy
            raise MCPError(code=TASK_REFUSED, message=f"{env['status']}: {env['error']}", data=env)
        return tasks.legacy_created(job, self.task_ttl_ms)

    def result(self, env: dict[str, Any], ok: frozenset[str] = frozenset({p.COMPLETED}),
               images: list[dict[str, Any]] | tuple[()] = ()) -> types.CallToolResult:
        """An envelope as a tool result: structuredContent, the same as JSON text, and images a
        handler returned (then `images`: a verification's picture) as MCP image content. A result
        over `Limits.inline_result_max_bytes` is sent as its first page (paging.py). With
        `Limits.text_result_max_bytes` set, a larger result is left out of the text block, which says so."""
        shown = list(images)
        result = env.get("result")
        if isinstance(result, dict) and p.image_problem(result) is None and p.IMAGES_KEY in result:
            # Not popped: one delivered envelope may answer several waiters of the same job.
            shown = [*result[p.IMAGES_KEY], *shown]
            env = {**env, "result": {k: v for k, v in result.items() if k != p.IMAGES_KEY}}
        content: list[Any] = [types.ImageContent(type="image", data=image["data"],
                                                 mime_type=image.get("mime_type", "image/png")) for image in shown]
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

    # ---- resources -------------------------------------------------------------------------
    async def _list_resources(self, ctx: Any, params: Any) -> types.ListResourcesResult:
        listed = [types.Resource(uri=r.uri, name=r.name, description=r.description, mime_type=r.mime_type)
                  for r in self.plugins.resources if not r.is_template]
        if mcp_apps.negotiated(ctx):
            listed += [mcp_apps.listed(app) for app in self.plugins.apps.values()]
        return types.ListResourcesResult(resources=listed)

    async def _list_resource_templates(self, ctx: Any, params: Any) -> types.ListResourceTemplatesResult:
        return types.ListResourceTemplatesResult(resource_templates=[
            types.ResourceTemplate(uri_template=r.uri, name=r.name, description=r.description, mime_type=r.mime_type)
            for r in self.plugins.resources if r.is_template
        ])

    def match_resource(self, uri: str) -> tuple[Resource, dict[str, Any]] | None:
        for res in self.plugins.resources:
            if not res.is_template and res.uri == uri:
                return res, dict(res.params)
        for res in self.plugins.resources:
            if res.is_template:
                found = UriTemplate.parse(res.uri).match(uri)
                if found is not None:
                    return res, {**res.params, **found}
        return None

    async def _read_resource(self, ctx: Any, params: types.ReadResourceRequestParams) -> types.ReadResourceResult:
        uri = str(params.uri)
        if uri in self.plugins.apps:
            return mcp_apps.contents(self.plugins.apps[uri])
        self._ensure_started()
        found = self.match_resource(uri)
        if found is None:
            raise MCPError(code=RESOURCE_NOT_FOUND, message=f"resource not found: {uri}")
        res, arguments = found
        cmd = self.plugins.commands[res.command]
        env = await self.run_command(Call(user_id=self.identity_of(ctx)[0]), cmd, arguments)
        if env["status"] != p.COMPLETED:
            # One line: a handler's traceback is for the peer's log, not a client. A handler that failed
            # on what the URI names (no such object) means the resource is not there.
            first = (env["error"] or env["status"]).strip().splitlines()[0]
            raise MCPError(code=RESOURCE_NOT_FOUND if env["status"] == p.FAILED else -32603,
                           message=f"{uri}: {env['status']}: {first}")
        meta = {"revision": env["revision"]} if "revision" in env else None  # which scene the text shows
        return types.ReadResourceResult(contents=[
            types.TextResourceContents(uri=uri, mime_type=res.mime_type, text=json.dumps(env["result"]), meta=meta)
        ])

    async def _subscribe(self, ctx: Any, params: types.SubscribeRequestParams) -> types.EmptyResult:
        """2025-11-25 `resources/subscribe`: notifications/resources/updated when the scene behind it changes."""
        uri = str(params.uri)
        if self.match_resource(uri) is None:
            raise MCPError(code=RESOURCE_NOT_FOUND, message=f"resource not found: {uri}; resources/list names them")
        self._ensure_started()
        try:
            self.changes.subscribe(self.identity_of(ctx)[0], uri, ctx.session)
        except TooManySubscriptions as exc:
            raise MCPError(code=-32602, message=str(exc)) from None
        return types.EmptyResult()

    async def _unsubscribe(self, ctx: Any, params: types.UnsubscribeRequestParams) -> types.EmptyResult:
        self.changes.unsubscribe(self.identity_of(ctx)[0], str(params.uri), ctx.session)
        return types.EmptyResult()

    async def _listen(self, ctx: Any, params: types.SubscriptionsListenRequestParams) -> Any:
        """2026-07-28 `subscriptions/listen`: a stream of the caller's own change notifications."""
        self._ensure_started()
        return await self.changes.listen(self.identity_of(ctx)[0], ctx, params, self.task_ttl_ms, self.result)

    async def _complete(self, ctx: Any, params: types.CompleteRequestParams) -> types.CompleteResult:
        self._ensure_started()
        return await self.completer.complete(self.identity_of(ctx)[0], params)

    # ---- prompts -----------------------------------------------------------------------------
    async def _list_prompts(self, ctx: Any, params: Any) -> types.ListPromptsResult:
        return types.ListPromptsResult(prompts=[
            types.Prompt(name=pr.name, title=pr.title, description=pr.description, arguments=[
                types.PromptArgument(name=a.name, description=a.description, required=a.required) for a in pr.arguments])
            for pr in self.plugins.prompts.values()
        ])

    async def _get_prompt(self, ctx: Any, params: types.GetPromptRequestParams) -> types.GetPromptResult:
        prompt = self.plugins.prompts.get(params.name)
        if prompt is None:
            raise MCPError(code=-32602, message=f"unknown prompt {params.name!r}"
                           f"{did_you_mean(params.name, self.plugins.prompts)}; prompts/list lists them")
        try:
            text = prompt.render(dict(params.arguments or {}))
        except ValueError as exc:
            raise MCPError(code=-32602, message=str(exc)) from None
        return types.GetPromptResult(description=prompt.description, messages=[
            types.PromptMessage(role="user", content=types.TextContent(type="text", text=text))])
