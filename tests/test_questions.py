"""A job asks the person behind its caller (MCP elicitation): `answer = yield job.ask(...)` in a handler,
and `allow_code_execution = ask`, where the person sees each script and approves it before it runs.
Real Python SDK clients, with and without elicitation, in both protocol eras; across two replicas on
Redis; the Python test peer running the add-on's own executor."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from mcp import types

from blendbus import protocol as p
from blendbus.client import connect
from blendbus.testing import PythonPeer, call_envelope, make_server, serve_http
from blendbus.testing import plugin as testing_plugin

pytestmark = pytest.mark.anyio


class Person:
    """An elicitation callback: records what it was asked and answers as told."""

    def __init__(self, action: str = "accept", content: dict[str, Any] | None = None) -> None:
        self.action, self.content = action, content
        self.asked: list[types.ElicitRequestParams] = []

    async def __call__(self, context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        self.asked.append(params)
        return types.ElicitResult(action=self.action, content=self.content if self.action == "accept" else None)


async def test_a_handler_asks_and_gets_the_answer(blendbus_server):
    person = Person(content={"name": "Suzanne"})
    async with serve_http(blendbus_server) as url, PythonPeer(lambda: connect(url)):
        async with connect(url, mode="legacy", elicitation_callback=person) as client:
            env = await call_envelope(client, "blender_test_ask", {"question": "Which monkey?"})
        assert env["status"] == p.COMPLETED
        assert env["result"] == {"action": "accept", "content": {"name": "Suzanne"}, "reason": ""}
        asked = person.asked[0]
        assert asked.message == "Which monkey?" and asked.requested_schema["properties"]["name"]["type"] == "string"
        person.action = "decline"
        async with connect(url, mode="legacy", elicitation_callback=person) as client:
            env = await call_envelope(client, "blender_test_ask", {"question": "Again?"})
        assert env["result"] == {"action": "decline", "content": None, "reason": ""}


async def test_a_client_that_cannot_ask_is_told_why(blendbus_server):
    async with serve_http(blendbus_server) as url, PythonPeer(lambda: connect(url)):
        async with connect(url, mode="legacy") as plain:
            env = await call_envelope(plain, "blender_test_ask", {"question": "Anyone?"})
        assert env["status"] == p.COMPLETED and env["result"]["action"] == "cancel"
        assert "did not declare elicitation" in env["result"]["reason"]
        async with connect(url, mode="auto", elicitation_callback=Person()) as modern:
            env = await call_envelope(modern, "blender_test_ask", {"question": "Anyone?"})
        assert env["result"]["action"] == "cancel" and "input-required" in env["result"]["reason"]


@pytest.mark.parametrize("answer", ["approve", "refuse", "decline"])
async def test_ask_before_running_code(blendbus_server, tmp_path: Path, answer: str):
    """allow_code_execution = ask: the person sees the script; approved, it runs; otherwise nothing runs."""
    mark = tmp_path / "ran"
    code = f"open({str(mark)!r}, 'w').write('x')\nprint('ran')"
    person = Person("decline" if answer == "decline" else "accept", {"approve": answer == "approve"})
    async with serve_http(blendbus_server) as url, \
            PythonPeer(lambda: connect(url), settings={p.CODE_GATE: p.GATE_ASK}), \
            connect(url, mode="legacy", elicitation_callback=person) as client:
        env = await call_envelope(client, "blender_execute_code", {"code": code})
        clients = (await call_envelope(client, "blender_list_clients"))["clients"]
    assert code in person.asked[0].message and person.asked[0].requested_schema["properties"]["approve"]
    assert clients[0]["gates"][p.CODE_GATE] == p.GATE_ASK
    if answer == "approve":
        assert env["status"] == p.COMPLETED and env["result"] == "ran\n" and mark.exists()
    else:
        assert env["status"] == p.CANCELLED and "did not approve" in env["error"] and not mark.exists()


async def test_ask_before_running_code_without_a_client_that_can_ask(blendbus_server, tmp_path: Path):
    mark = tmp_path / "ran"
    async with serve_http(blendbus_server) as url, \
            PythonPeer(lambda: connect(url), settings={p.CODE_GATE: p.GATE_ASK}), \
            connect(url, mode="legacy") as client:
        env = await call_envelope(client, "blender_execute_code", {"code": f"open({str(mark)!r}, 'w')"})
    assert env["status"] == p.FAILED and not mark.exists()
    assert "needs the person's approval" in env["error"] and "allow_code_execution" in env["error"]
    assert "did not declare elicitation" in env["error"]


async def test_a_question_crosses_replicas(blendbus_redis):
    """The caller waits on one replica, the peer polls another: the question and the answer cross Redis."""
    first, second = (make_server([("testing", testing_plugin)], backend=blendbus_redis) for _ in range(2))
    person = Person(content={"name": "across"})
    async with serve_http(first) as one, serve_http(second) as two, PythonPeer(lambda: connect(two)), \
            connect(one, mode="legacy", elicitation_callback=person) as client:
        env = await call_envelope(client, "blender_test_ask", {"question": "From afar?"})
    assert env["result"] == {"action": "accept", "content": {"name": "across"}, "reason": ""}


async def test_a_person_approves_a_script_before_real_blender_runs_it(blendbus_server, tmp_path: Path):
    """Blender as installed (allow_code_execution left at its default, ask): the person sees the script,
    approves it, and only then does Blender make the cube."""
    from blendbus.testing.blender import blender_peer

    code = "import bpy\nbpy.ops.mesh.primitive_cube_add(location=(0, 0, 2))\nprint(len(bpy.data.objects))"
    person = Person(content={"approve": True})
    async with serve_http(blendbus_server) as url, blender_peer(blendbus_server, url, tmp_path):
        async with connect(url, mode="legacy", elicitation_callback=person) as client:
            env = await call_envelope(client, "blender_execute_code", {"code": code})
            assert env["status"] == p.COMPLETED and env["result"] == "4\n"
            person.content = {"approve": False}
            env = await call_envelope(client, "blender_execute_code", {"code": code})
            assert env["status"] == p.CANCELLED
            count = await call_envelope(client, "blender_get_scene_info")
    assert [code in asked.message for asked in person.asked] == [True, True]
    assert count["result"]["object_count"] == 4  # the refused cube was never made
