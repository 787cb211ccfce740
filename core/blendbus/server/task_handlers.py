"""MCP tasks, both eras, over the job store: a task is a job (tasks.py shapes it for the wire).

2026-07-28 clients declare the tasks extension per request, get a task handle from `tools/call` when
the job outlives `Limits.task_after_s` (at once for a long-running Command), and follow it with
tasks/get, tasks/cancel, tasks/update and tasks/list. 2025-11-25 clients negotiated
`capabilities.tasks` in the handshake, ask with `params.task` and wait with tasks/result.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import mcp_types as types
from mcp.shared.exceptions import MCPError
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from .. import mcp_apps, tasks
from .. import protocol as p
from ..backends.base import JobStoreError
from ..command import Command
from ..dispatch import Detached
from ..questions import Questions
from ..waits import CallerGone, TooManyWaits, Waits, gone_event, while_present
from .builtin_tools import WAITS, Call
from .calls import Calls, finished_result, identity_of

log = logging.getLogger(__name__)
TASK_REFUSED = -32000
"""JSON-RPC error code for a task request that cannot be served now: a task-augmented call that could
not be queued (no peer, several, busy; `data` is the envelope, with its status), or a `tasks/result`
beyond the caller's waits or its time bound (call it again later)."""


def session_era(ctx: Any) -> bool:
    """Whether the request comes from a 2025-11-25 (handshake) client rather than a 2026-07-28 one."""
    return ctx.protocol_version not in MODERN_PROTOCOL_VERSIONS


class TaskHandlers:
    """The tasks methods, and the task-augmented `tools/call` of both eras, for one server."""

    def __init__(self, calls: Calls, questions: Questions, waits: Waits) -> None:
        self.calls, self.hub, self.questions, self.waits = calls, calls.hub, questions, waits

    async def call(self, ctx: Any, call: Call, cmd: Command, arguments: dict[str, Any]) -> Any:
        """For a client that declared the tasks extension: the result if the job ends within the grace,
        else (or at once, for a long-running Command, or when the job asks) a task handle on the job."""
        hub, grace = self.hub, self.hub.limits.task_after_s
        asked: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        call.progress.ask = self.questions.detach_on(ctx, call.user_id, asked)  # type: ignore[attr-defined]
        if cmd.long_running or grace <= 0:
            env = await self.calls.run(call, cmd, arguments, wait=False)
        else:
            try:
                env = await self.calls.run(call, cmd, arguments, timeout=grace, detach=asked)
            except Detached:  # the job waits on its question: the client finds it in tasks/get
                question = asked.result()
                job = await hub.jobs.get(call.user_id, question["job_id"])
                return tasks.created(job, self.ttl_ms, question) if job else self.calls.result(
                    p.envelope(p.LOST, job_id=question["job_id"], error="the job asked, then vanished from the store"))
        job = await hub.jobs.get(call.user_id, env["job_id"]) if env["job_id"] else None
        if job is None or env["status"] not in (p.TIMEOUT, p.QUEUED):
            return self.calls.result(env)
        return tasks.created(job, self.ttl_ms, await hub.asked.outstanding(call.user_id, job.job_id))

    @property
    def ttl_ms(self) -> int:
        """Tasks live as long as their jobs are kept."""
        return tasks.ttl_ms(self.hub.jobs.max_age_s)

    async def _task_job(self, ctx: Any, params: tasks.TaskParams, method: str) -> Any:
        """The caller's job behind a task id. The 2026-07-28 era requires the extension on each request;
        2025-11-25 clients negotiated `capabilities.tasks` once, in the handshake."""
        if not session_era(ctx):
            tasks.require_extension(ctx.meta, method)
        job = await self.hub.jobs.get(identity_of(ctx)[0], params.task_id)
        if job is None:
            raise tasks.unknown(params.task_id)
        return job

    async def get(self, ctx: Any, params: tasks.TaskParams) -> dict[str, Any]:
        job = await self._task_job(ctx, params, "tasks/get")
        if session_era(ctx):
            return tasks.legacy_task(job, self.ttl_ms)
        return tasks.detailed(job, self.ttl_ms, await self._question(job), finished_result(job, self.hub.limits))

    async def _question(self, job: Any) -> dict[str, Any] | None:
        """The question an open job waits on (asked.py)."""
        return await self.hub.asked.outstanding(job.user_id, job.job_id) if job.status in p.OPEN_STATUSES \
            else None

    async def cancel(self, ctx: Any, params: tasks.TaskParams) -> dict[str, Any]:
        job = await self._task_job(ctx, params, "tasks/cancel")
        if job.status in p.OPEN_STATUSES:
            await self.hub.cancel_job(job.user_id, job.job_id)
        elif session_era(ctx):
            raise MCPError(code=tasks.INVALID_PARAMS, message=f"task {job.job_id!r} is already {tasks.status_of(job)}")
        if session_era(ctx):
            return tasks.legacy_task(await self.hub.jobs.get(job.user_id, job.job_id) or job, self.ttl_ms)
        return {}

    async def update(self, ctx: Any, params: tasks.TaskParams) -> dict[str, Any]:
        """The client's `inputResponses` to the question its task waits on go to the job. Responses to
        keys not outstanding (never asked, answered already, or superseded) are ignored, as the
        extension says; the acknowledgement is empty either way."""
        job = await self._task_job(ctx, params, "tasks/update")
        responses = (params.model_extra or {}).get("inputResponses")
        if not isinstance(responses, dict):
            raise MCPError(code=tasks.INVALID_PARAMS, message="tasks/update needs inputResponses: an object of the"
                           " answers to the task's inputRequests, keyed as they were")
        question = await self._question(job)
        if question is not None and question["id"] in responses:
            await self.questions.respond(job.user_id, question, responses[question["id"]])
        return {}

    async def result(self, ctx: Any, params: tasks.TaskParams) -> dict[str, Any]:
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
        await self._tell_status(ctx, tasks.legacy_task(final, self.ttl_ms))
        result = self.calls.result(env).model_dump(by_alias=True, mode="json", exclude_none=True)
        result["_meta"] = {**result.get("_meta", {}), tasks.RELATED_TASK_META: {"taskId": job.job_id}}
        return result

    async def _until_ended(self, user_id: str, job_id: str, bound_s: float) -> dict[str, Any]:
        """The job's envelope once it ended, or as it stands after `bound_s`."""
        deadline = time.monotonic() + bound_s
        env = await self.hub.get_job(user_id, job_id)
        while env["status"] in p.OPEN_STATUSES and (remaining := deadline - time.monotonic()) > 0:
            wait_s = min(remaining, self.hub.limits.max_wait_s)
            env = await self.hub.get_job(user_id, job_id, wait_s=wait_s)
        return env

    async def list_tasks(self, ctx: Any, params: tasks.TaskListParams) -> dict[str, Any]:
        """The caller's own tasks (every job is one), newest first, a page at a time."""
        if not session_era(ctx):
            tasks.require_extension(ctx.meta, "tasks/list")
        user_id = identity_of(ctx)[0]
        jobs = await self.hub.jobs.recent(user_id, tasks.LIST_PAGE, tasks.cursor_time(params.cursor))
        shape = tasks.legacy_task if session_era(ctx) else tasks.task
        listed: dict[str, Any] = {"tasks": [shape(job, self.ttl_ms) for job in jobs]}
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

    async def handshake_era(self, ctx: Any, call_next: Any) -> Any:
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
        if (ctx.method == "tools/call" and session_era(ctx) and isinstance(ctx.params, dict)
                and ctx.params.get("task") is not None):
            return await self._call_as_legacy_task(ctx)
        return await call_next(ctx)

    async def _call_as_legacy_task(self, ctx: Any) -> dict[str, Any]:
        """A 2025-11-25 task-augmented tools/call: the job is queued and its task returned at once."""
        self.calls.ensure_started()
        try:
            params = types.CallToolRequestParams.model_validate(ctx.params, by_name=False)
        except ValueError as exc:
            raise MCPError(code=tasks.INVALID_PARAMS, message=f"invalid tools/call params: {exc}") from None
        name, arguments = params.name, dict(params.arguments or {})
        cmd = self.calls.plugins.by_tool(name)
        if cmd is None:
            raise MCPError(code=tasks.INVALID_PARAMS, message=f"{name} does not run as a task (its"
                           " execution.taskSupport is not set); call it without `task`")
        call, refusal = self.calls.admit(ctx, name, arguments)
        if refusal is not None:
            raise MCPError(code=tasks.INVALID_PARAMS, message=str((refusal.structured_content or {}).get("error")))
        try:
            env = await self.calls.run(call, cmd, arguments, wait=False)
        except (PermissionError, LookupError, ValueError, JobStoreError) as exc:
            raise MCPError(code=TASK_REFUSED, message=str(exc)) from None
        job = await self.hub.jobs.get(call.user_id, env["job_id"]) if env["job_id"] else None
        if job is None:  # nothing was queued: no peer, several, busy
            raise MCPError(code=TASK_REFUSED, message=f"{env['status']}: {env['error']}", data=env)
        return tasks.legacy_created(job, self.ttl_ms)
