"""The official TypeScript SDK client against blendbus: most MCP hosts are not Python.

tests/node/clients.mjs runs a scenario with @modelcontextprotocol/sdk (pinned in
tests/node/package-lock.json, installed by scripts/test-prereqs.sh) and prints what it saw as JSON.
"""

from __future__ import annotations

import json
import sys

import pytest

from blendbus import paging
from blendbus import protocol as p
from blendbus.client import connect
from blendbus.testing import PythonPeer, serve_http
from blendbus.testing.blender import needs_bpy

from .nodeclients import run_node

pytestmark = pytest.mark.anyio
MIB = 1024 * 1024
STDIO_LINE_LIMIT = 10 * MIB
"""The TypeScript SDK's stdio transport closes the connection on a longer message."""


@needs_bpy
async def test_a_large_result_does_not_kill_a_stdio_client(tmp_path):
    """A 6 MiB script output, once a 12+ MiB message that closed the TypeScript client's stdio
    transport: now the first page, then the rest through blender_get_job, and the session lives on.
    The calls start while the embedded Blender is still starting: they wait for it. Then the largest
    pages a client may ask for (paging.MAX_PAGE_BYTES), of the text JSON escapes most: each answer is
    about three times its page (docs/limits.md), and still inside the stdio limit."""
    server = [sys.executable, "-m", "blendbus", "serve", "--stdio", "--port", "0", "--state-dir",
              str(tmp_path / "state"), "--embedded-blender"]
    seen = await run_node("stdio-large-result", json.dumps(server), str(6 * MIB), str(paging.MAX_PAGE_BYTES))
    assert seen["status"] == "completed" and seen["truncated"] is True and seen["still_connected"] is True
    assert seen["reassembled"] == seen["result_bytes"] >= 6 * MIB and seen["pages"] > 1 and seen["intact"]
    assert seen["largest_message"] < MIB < STDIO_LINE_LIMIT
    largest = seen["largest_pages"]
    assert largest["status"] == "completed" and largest["intact"] and largest["result_bytes"] >= 6 * MIB
    assert 2 * paging.MAX_PAGE_BYTES < largest["largest_message"] < STDIO_LINE_LIMIT


async def test_a_large_result_reaches_an_http_client(blendbus_server):
    async with serve_http(blendbus_server) as url:
        async with PythonPeer(lambda: connect(url)):
            seen = await run_node("http-large-result", url, str(3 * MIB))
    assert seen["status"] == "completed" and seen["truncated"] is True and seen["still_connected"] is True
    assert seen["reassembled"] == seen["result_bytes"] >= 3 * MIB and seen["largest_message"] < MIB


async def test_a_task_through_the_typescript_client(blendbus_server):
    """2025-11-25 tasks as the TypeScript SDK's callToolStream uses them: the server advertises
    capabilities.tasks, the tool says taskSupport optional, the call returns a task at once, the
    client polls tasks/get, then tasks/result gives the CallToolResult."""
    async with serve_http(blendbus_server) as url:
        async with PythonPeer(lambda: connect(url)):
            seen = await run_node("http-task", url, "2")
    assert seen["server_tasks"] == {"list": {}, "cancel": {}, "requests": {"tools": {"call": {}}}}
    assert seen["tool_execution"] == {"taskSupport": "optional"}
    assert seen["types"][0] == "taskCreated" and seen["types"][-1] == "result" and "taskStatus" in seen["types"]
    assert seen["created_status"] == "working" and seen["statuses"][-1] == "completed"
    assert set(seen["statuses"]) <= {"working", "completed"} and seen["ttl"] > 0 and seen["poll_interval"] > 0
    assert seen["result"]["status"] == "completed" and seen["result"]["result"] == 2.0 and seen["is_error"] is False
    assert seen["related"] == seen["task_id"] and seen["listed"] and seen["get_status"] == "completed"
    assert seen["unknown_task"] == -32602  # unknown, expired or another user's: the same answer
    assert seen["status_notifications"] == ["completed"]  # notifications/tasks/status, before the result


async def test_a_cancelled_task_frees_the_peer(blendbus_server):
    async with serve_http(blendbus_server) as url:
        async with PythonPeer(lambda: connect(url), concurrency=1):
            seen = await run_node("http-task-cancel", url, "60")
    assert seen["types"][0] == "taskCreated" and "cancelled" in seen["last"] and seen["status_after"] == "cancelled"
    assert seen["next"]["status"] == "completed" and seen["next"]["result"] == {"echo": "free again"}
    assert seen["total_ms"] < 60_000  # the 60 s loop was interrupted, not waited out


async def test_progress_keeps_a_long_call_alive_in_the_typescript_client(blendbus_server):
    """A 7 s call from a client that gives up after 3 s without news: progress resets its timeout."""
    blendbus_server.hub.limits.progress_every_s = 1.0
    async with serve_http(blendbus_server) as url:
        async with PythonPeer(lambda: connect(url)):
            seen = await run_node("http-progress", url, "7")
    assert seen["status"] == "completed" and seen["reports"] >= 5 and seen["rising"]
    assert any(m.startswith("running on py-") for m in seen["messages"])


async def test_the_typescript_client_sees_the_viewport_app_only_when_it_speaks_mcp_apps(blendbus_server):
    async with serve_http(blendbus_server) as url:
        plain = await run_node("http-apps", url, "plain")
        apps = await run_node("http-apps", url, "apps")
    assert plain["pick"] is None and plain["render"] is None and "ui://blendbus/viewport" not in plain["resources"]
    assert apps["pick"] == {"ui": {"resourceUri": "ui://blendbus/viewport", "visibility": ["app"]}}
    assert apps["render"]["ui"]["resourceUri"] == "ui://blendbus/viewport" and "ui://blendbus/viewport" in apps["resources"]
    assert plain["app_mime"] == apps["app_mime"] == "text/html;profile=mcp-app"
    assert "io.modelcontextprotocol/ui" in apps["server_apps"]


async def test_the_typescript_client_hears_a_jobs_log_lines_at_its_level(blendbus_server):
    async with serve_http(blendbus_server) as url:
        async with PythonPeer(lambda: connect(url)):
            seen = await run_node("http-logging", url, "warning")
    assert seen["status"] == "completed" and seen["logging_capability"] == {}
    assert [line[:2] for line in seen["lines"]] == [["warning", "blender"], ["error", "blender"], ["warning", "blender"]]
    assert seen["lines"][-1][2].startswith("UserWarning: a thing the caller should know about")


@pytest.mark.parametrize("decision", ["approve", "refuse"])
async def test_the_typescript_client_asks_its_user_before_a_script_runs(blendbus_server, decision):
    async with serve_http(blendbus_server) as url:
        async with PythonPeer(lambda: connect(url), settings={p.CODE_GATE: p.GATE_ASK}):
            seen = await run_node("http-elicit", url, decision)
    assert "print('approved')" in seen["asked"][0] and seen["schema"]["properties"]["approve"]["type"] == "boolean"
    if decision == "approve":
        assert seen["status"] == p.COMPLETED and seen["result"] == "approved\n"
    else:
        assert seen["status"] == p.CANCELLED and seen["result"] is None
    assert seen["asked"][1] == "Your name?" and seen["named"]["action"] == "accept"


async def test_the_typescript_client_answers_a_jobs_question_to_its_model(blendbus_server):
    async with serve_http(blendbus_server) as url:
        async with PythonPeer(lambda: connect(url)):
            seen = await run_node("http-sample", url, "0")
    assert seen["asked"] == ["A metal for a teapot?"] and seen["maxTokens"] == 100
    assert seen["result"] == {"action": "accept", "text": "Copper", "model": "stand-in-1", "reason": ""}
