"""Long jobs as MCP tasks (extension `io.modelcontextprotocol/tasks`, SEP-2663, 2026-07-28 era).

A client that declares the extension on a `tools/call` may get a task handle instead of a result:
when the call has not finished within `Limits.task_after_s`, or at once for a Command declared
`long_running`. The task *is* the job: its id is the job id (128 random bits), its state is the job
store's, so a task survives a server restart and can be followed from any connection of the same
user. `tasks/get` returns the DetailedTask, `tasks/cancel` stops the job (Blender included). A job
that asks (`job.ask`, `job.sample`) puts its task in `input_required`, with the question as
`inputRequests` in tasks/get; `tasks/update` brings the client's `inputResponses` to the job.

Status mapping (docs/tasks.md): queued and running are `working` (`input_required` while the job
waits on a question); a job that ended, well or badly
at the tool level (completed, failed, lost, timeout), is `completed` with its CallToolResult
(`isError` for the failures); cancelled is `cancelled`.
"""

from __future__ import annotations

import datetime
import math
from typing import Any

import mcp_types as types
from mcp.shared.exceptions import MCPError
from pydantic import ConfigDict, Field

from . import protocol as p
from .backends.snapshots import Job
from .questions import input_request

EXTENSION = "io.modelcontextprotocol/tasks"
MISSING_CLIENT_CAPABILITY = -32021
INVALID_PARAMS = -32602
POLL_INTERVAL_MS = 1000


class TaskParams(types.RequestParams):
    """Parameters of tasks/get, tasks/cancel and tasks/update."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)
    task_id: str = Field(alias="taskId", min_length=1, max_length=200)


def declared(meta: Any) -> bool:
    """Whether a request's `_meta` declares the tasks extension in its per-request capabilities."""
    capabilities = (meta or {}).get(types.CLIENT_CAPABILITIES_META_KEY) if isinstance(meta, dict) else None
    extensions = capabilities.get("extensions") if isinstance(capabilities, dict) else None
    return isinstance(extensions, dict) and EXTENSION in extensions


def status_of(job: Job, asking: bool = False) -> str:
    if job.status in p.OPEN_STATUSES:
        return "input_required" if asking else "working"
    return "cancelled" if job.status == p.CANCELLED else "completed"


def _iso(epoch: float) -> str:
    return datetime.datetime.fromtimestamp(epoch, datetime.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def task(job: Job, ttl_ms: int, question: dict[str, Any] | None = None) -> dict[str, Any]:
    """The Task shape of a job; `question`, the one it waits on (asked.py)."""
    status = status_of(job, question is not None)
    if status == "input_required":
        message = "waiting for an answer: " + str(question.get("message") or "a request for the client's model")  # type: ignore[union-attr]
    elif status == "working":
        message = job.message or (f"running on {job.target_uuid}" if job.status == p.RUNNING
                                  else f"queued for {job.target_uuid}")
    else:
        message = job.error or job.status
    return {"taskId": job.job_id, "status": status, "statusMessage": message, "createdAt": _iso(job.created),
            "lastUpdatedAt": _iso(job.updated), "ttlMs": ttl_ms, "pollIntervalMs": POLL_INTERVAL_MS}


def created(job: Job, ttl_ms: int, question: dict[str, Any] | None = None) -> dict[str, Any]:
    """The CreateTaskResult a tools/call answers with when it becomes a task (`input_required` if its job
    waits on `question` already: tasks/get shows it)."""
    return {"resultType": "task", **task(job, ttl_ms, question)}


def ttl_ms(max_age_s: float) -> int:
    """A task's ttlMs: tasks live as long as their jobs are kept (`Jobs.max_age_s`)."""
    return int(max_age_s * 1000)


def detailed(job: Job, ttl_ms: int, question: dict[str, Any] | None = None,
             result: types.CallToolResult | None = None) -> dict[str, Any]:
    """The tasks/get answer: the task, with its CallToolResult (`result`, server/calls.py shapes it)
    inlined once it is completed, or, while it waits on `question`, that question as its MCP request in
    `inputRequests`, keyed by its id."""
    shape = task(job, ttl_ms, question)
    if shape["status"] == "input_required" and question is not None:
        request = input_request(question).model_dump(by_alias=True, mode="json", exclude_none=True)
        shape["inputRequests"] = {question["id"]: request}
    if shape["status"] == "completed" and result is not None:
        shape["result"] = result.model_dump(by_alias=True, mode="json", exclude_none=True)
    return {"resultType": "complete", **shape}


def require_extension(meta: Any, method: str) -> None:
    if not declared(meta):
        raise MCPError(code=MISSING_CLIENT_CAPABILITY, message=f"{method} needs the {EXTENSION} extension in the"
                       " request's client capabilities", data={"requiredCapabilities": {"extensions": {EXTENSION: {}}}})


def unknown(task_id: str) -> MCPError:
    return MCPError(code=INVALID_PARAMS, message=f"no task {task_id!r}: unknown, expired, or not yours")


# ---- the 2025-11-25 era: session-era clients (the TypeScript SDK's callToolStream) ------------------
LEGACY_VERSION = "2025-11-25"
"""The one handshake-era revision that defines tasks."""
LEGACY_CAPABILITY: dict[str, Any] = {"list": {}, "cancel": {}, "requests": {"tools": {"call": {}}}}
"""`capabilities.tasks` as 2025-11-25 defines it: tools/call may be task-augmented; list and cancel work."""
RELATED_TASK_META = "io.modelcontextprotocol/related-task"
LIST_PAGE = 50


class TaskListParams(types.RequestParams):
    """Parameters of tasks/list: an opaque cursor from the previous page."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)
    cursor: str | None = Field(default=None, max_length=100)


def legacy_task(job: Job, ttl_ms: int) -> dict[str, Any]:
    """The 2025-11-25 Task shape of a job (same statuses; `ttl` and `pollInterval` instead of the *Ms names)."""
    shape = task(job, ttl_ms)
    return {"taskId": shape["taskId"], "status": shape["status"], "statusMessage": shape["statusMessage"],
            "createdAt": shape["createdAt"], "lastUpdatedAt": shape["lastUpdatedAt"], "ttl": ttl_ms,
            "pollInterval": POLL_INTERVAL_MS}


def legacy_created(job: Job, ttl_ms: int) -> dict[str, Any]:
    """The 2025-11-25 CreateTaskResult: `{task: Task}`."""
    return {"task": legacy_task(job, ttl_ms)}


def page_cursor(jobs: list[Job]) -> str | None:
    """The cursor of the page after `jobs` (None: that was the last page)."""
    return repr(jobs[-1].created) if len(jobs) == LIST_PAGE else None


def cursor_time(cursor: str | None) -> float | None:
    if cursor is None:
        return None
    try:
        value = float(cursor)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise MCPError(code=INVALID_PARAMS, message=f"cursor {cursor[:40]!r} is not one tasks/list gave")
    return value
