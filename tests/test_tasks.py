"""MCP tasks in the 2026-07-28 era (extension io.modelcontextprotocol/tasks), as raw JSON-RPC over HTTP:
the Python SDK has no tasks client, so these requests are written out as the specification shows them."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import httpx2
import pytest

from blendbus import protocol as p
from blendbus.client import connect
from blendbus.dispatch import Limits
from blendbus.testing import PythonPeer, eventually, make_server, serve_http
from blendbus.testing import plugin as testing_plugin
from blendbus.testing.raw import TASKS as EXTENSION
from blendbus.testing.raw import ModernClient

pytestmark = pytest.mark.anyio


class Raw(ModernClient):
    """The raw 2026-07-28 client, with a wait for a task's end."""

    async def until_done(self, task_id: str) -> dict[str, Any]:
        for _ in range(300):
            got = (await self("tasks/get", {"taskId": task_id}))["result"]
            if got["status"] != "working":
                return got
            await asyncio.sleep(got["pollIntervalMs"] / 10000)
        raise AssertionError(f"task {task_id} never finished")


def empty(result: dict[str, Any]) -> bool:
    """An empty acknowledgement (beside the envelope's own `_meta`)."""
    return {k: v for k, v in result.items() if k != "_meta"} == {"resultType": "complete"}


@pytest.fixture
async def bus(tmp_path):
    server = make_server([("testing", testing_plugin)], state_dir=tmp_path / "state",
                         limits=Limits(peer_grace_s=1.5, poll_wait_s=5.0, task_after_s=0.3))
    async with serve_http(server, tokens={"a": "alice", "b": "bob"}) as url:
        async with PythonPeer(lambda: connect(url, "a"), concurrency=1), httpx2.AsyncClient(timeout=30) as http:
            yield server, Raw(http, url, "a"), Raw(http, url, "b"), Raw(http, url, "a", tasks=False)


async def test_a_tasks_whole_life(bus):
    server, alice, _, _ = bus
    discovered = (await alice("server/discover"))["result"]
    assert EXTENSION in discovered["capabilities"]["extensions"]
    quick = await alice.call("blender_test_echo", {"value": 1})
    assert quick["structuredContent"]["result"] == {"echo": 1} and "taskId" not in quick  # done within the grace
    created = await alice.call("blender_test_sleep", {"seconds": 1.5, "steps": 3})
    assert created["resultType"] == "task" and created["status"] == "working"
    assert re.fullmatch(r"j-[0-9a-f]{32}", created["taskId"])  # 128 random bits
    assert {"createdAt", "lastUpdatedAt", "ttlMs", "pollIntervalMs", "statusMessage"} <= set(created)
    assert created["createdAt"].endswith("Z") and created["ttlMs"] == 7 * 24 * 3600 * 1000
    working = (await alice("tasks/get", {"taskId": created["taskId"]}))["result"]
    assert working["resultType"] == "complete" and working["status"] == "working" and "result" not in working
    done = await alice.until_done(created["taskId"])
    assert done["status"] == "completed" and done["result"]["isError"] is False
    assert done["result"]["structuredContent"]["result"] == 1.5
    failing = await alice.call("blender_execute_code", {"code": "import time\ntime.sleep(0.6)\n1 / 0"})
    failed = await alice.until_done(failing["taskId"])  # a tool-level failure is a completed task, isError
    assert failed["status"] == "completed" and failed["result"]["isError"] is True
    assert "ZeroDivisionError" in failed["result"]["structuredContent"]["error"]
    assert empty((await alice("tasks/update", {"taskId": created["taskId"], "inputResponses": {}}))["result"])


async def test_a_task_that_asks_is_answered_through_tasks_update(bus):
    """A job that asks puts its task in input_required, with the question in tasks/get's inputRequests;
    tasks/update brings the answer to the job (keys not outstanding are ignored); a client that did not
    declare elicitation is never asked: its job hears cancel, and why."""
    server, alice, _, _ = bus
    asking = Raw(alice.http, alice.url, "a", elicitation=True)
    created = await asking.call("blender_test_ask", {"question": "Which colour?"})
    assert created["resultType"] == "task"
    task_id = created["taskId"]

    async def waiting() -> dict[str, Any]:
        got = (await asking("tasks/get", {"taskId": task_id}))["result"]
        return got if got["status"] == "input_required" else {}

    got = await eventually(waiting, "the task waits on its question", 10)
    (key, request), = got["inputRequests"].items()
    assert request["method"] == "elicitation/create" and request["params"]["message"] == "Which colour?"
    assert request["params"]["requestedSchema"]["type"] == "object" and "Which colour?" in got["statusMessage"]
    stray = {"taskId": task_id, "inputResponses": {"never-asked": {"action": "accept", "content": {"name": "red"}}}}
    assert empty((await asking("tasks/update", stray))["result"])
    assert (await asking("tasks/get", {"taskId": task_id}))["result"]["status"] == "input_required"
    bare = await asking("tasks/update", {"taskId": task_id})
    assert bare["error"]["code"] == -32602 and "inputResponses" in bare["error"]["message"]
    answer = {"taskId": task_id, "inputResponses": {key: {"action": "accept", "content": {"name": "blue"}}}}
    assert empty((await asking("tasks/update", answer))["result"])
    done = await asking.until_done(task_id)
    assert done["status"] == "completed" and "inputRequests" not in done
    assert done["result"]["structuredContent"]["result"] == {"action": "accept", "content": {"name": "blue"},
                                                             "reason": ""}
    unasked = await alice.call("blender_test_ask", {"question": "Anyone?"})  # no elicitation declared
    if unasked.get("resultType") == "task":
        unasked = (await alice.until_done(unasked["taskId"]))["result"]
    assert unasked["structuredContent"]["result"]["action"] == "cancel"
    assert "did not declare elicitation" in unasked["structuredContent"]["result"]["reason"]


async def test_a_cancelled_task_frees_the_peer(bus):
    server, alice, _, _ = bus
    spin = await alice.call("blender_execute_code", {"code": "n = 0\nwhile True:\n    n += 1"})
    assert spin["resultType"] == "task"
    await asyncio.sleep(0.3)
    assert empty((await alice("tasks/cancel", {"taskId": spin["taskId"]}))["result"])
    gone = await alice.until_done(spin["taskId"])
    assert gone["status"] == "cancelled" and "result" not in gone
    after = await alice.call("blender_test_echo", {"value": "free"})  # the peer's only worker was interrupted
    assert after["structuredContent"]["status"] == p.COMPLETED


async def test_a_listener_hears_its_tasks_end(bus):
    """`subscriptions/listen` with `taskIds`: notifications/tasks carries the DetailedTask when it ends."""
    server, alice, bob, _ = bus
    mine = (await alice.call("blender_test_sleep", {"seconds": 1.5}))["taskId"]
    theirs_seen: list[dict[str, Any]] = []
    frames: list[dict[str, Any]] = []
    listeners = [asyncio.ensure_future(alice.listen({"taskIds": [mine]}, frames)),
                 asyncio.ensure_future(bob.listen({"taskIds": [mine]}, theirs_seen))]  # another user's id
    try:
        for _ in range(200):
            if any(f.get("method") == "notifications/tasks" for f in frames):
                break
            await asyncio.sleep(0.05)
        ack, told = frames[0], [f for f in frames if f.get("method") == "notifications/tasks"]
        assert ack["method"] == "notifications/subscriptions/acknowledged"
        assert ack["params"]["notifications"]["taskIds"] == [mine]
        assert told and told[-1]["params"]["taskId"] == mine and told[-1]["params"]["status"] == "completed"
        assert told[-1]["params"]["result"]["structuredContent"]["result"] == 1.5
        assert all(f["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"] == frames[0]["params"]["_meta"][
            "io.modelcontextprotocol/subscriptionId"] for f in frames)
        assert [f["method"] for f in theirs_seen] == ["notifications/subscriptions/acknowledged"]  # bob hears nothing
    finally:
        for listener in listeners:
            listener.cancel()
        await asyncio.gather(*listeners, return_exceptions=True)


async def test_task_ids_are_private_and_the_extension_is_required(bus):
    server, alice, bob, alice_without = bus
    task = await alice.call("blender_test_sleep", {"seconds": 1.0})
    for who, method in ((bob, "tasks/get"), (bob, "tasks/cancel"), (alice, "tasks/get")):
        task_id = task["taskId"] if who is bob else "j-" + "0" * 32
        error = (await who(method, {"taskId": task_id}))["error"]
        assert error["code"] == -32602 and "not yours" in error["message"]
    refused = (await alice_without("tasks/get", {"taskId": task["taskId"]}))["error"]
    assert refused["code"] == -32021 and refused["data"]["requiredCapabilities"]["extensions"] == {EXTENSION: {}}
    plain = await alice_without.call("blender_test_sleep", {"seconds": 1.0, "timeout_s": 0.2})
    assert "taskId" not in plain and plain["structuredContent"]["status"] == p.TIMEOUT  # exactly as before
    await alice.until_done(task["taskId"])


async def test_a_task_survives_a_server_restart(tmp_path):
    limits = Limits(peer_grace_s=1.5, poll_wait_s=5.0, task_after_s=0.2)
    first = make_server([("testing", testing_plugin)], state_dir=tmp_path / "state", limits=limits)
    async with serve_http(first, tokens={"a": "alice"}) as url:
        port = int(url.rsplit(":", 1)[1].split("/")[0])
        peer = await PythonPeer(lambda: connect(url, "a")).start()
        async with httpx2.AsyncClient(timeout=30) as http:
            task = await Raw(http, url, "a").call("blender_test_sleep", {"seconds": 2.0})
    await first.hub.jobs.close()
    second = make_server([("testing", testing_plugin)], state_dir=tmp_path / "state", limits=limits)
    await second.hub.jobs.recover()
    try:
        async with serve_http(second, tokens={"a": "alice"}, port=port) as url, httpx2.AsyncClient(timeout=30) as http:
            alice = Raw(http, url, "a")
            for _ in range(100):  # the peer reconnects, and its outbox delivers the late result
                got = (await alice("tasks/get", {"taskId": task["taskId"]}))["result"]
                if got["status"] == "completed" and not got["result"]["isError"]:
                    break
                await asyncio.sleep(0.1)
            assert got["result"]["structuredContent"]["result"] == 2.0
    finally:
        await peer.kill()
