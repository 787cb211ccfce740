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
from blendbus.testing import PythonPeer, call_envelope, eventually, make_server, serve_http
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


async def test_a_2026_client_is_asked_in_rounds(blendbus_server):
    """2026-07-28: tools/call answers input_required; the SDK client asks its user and calls again with
    the answer, which reaches the job still waiting on its peer."""
    person = Person(content={"name": "modern"})
    async with serve_http(blendbus_server) as url, PythonPeer(lambda: connect(url)), \
            connect(url, mode="auto", elicitation_callback=person) as client:
        env = await call_envelope(client, "blender_test_ask", {"question": "Which era?"})
        assert env["status"] == p.COMPLETED
        assert env["result"] == {"action": "accept", "content": {"name": "modern"}, "reason": ""}
        assert [a.message for a in person.asked] == ["Which era?"]
        plain = await call_envelope(client, "blender_test_echo", {"value": 1})  # no question: one round
        assert plain["result"] == {"echo": 1}


async def test_a_client_that_cannot_ask_is_told_why(blendbus_server):
    async with serve_http(blendbus_server) as url, PythonPeer(lambda: connect(url)):
        async with connect(url, mode="legacy") as plain:
            env = await call_envelope(plain, "blender_test_ask", {"question": "Anyone?"})
        assert env["status"] == p.COMPLETED and env["result"]["action"] == "cancel"
        assert "did not declare elicitation" in env["result"]["reason"]


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


async def test_request_state_is_sealed_bound_to_its_caller_and_crosses_replicas(blendbus_redis):
    """The raw 2026-07-28 rounds: input_required with an opaque requestState; a tampered one, or one
    presented by another user, is refused (-32602); the genuine retry lands on the other replica."""
    import httpx2

    from blendbus.testing.raw import ModernClient

    tokens = {"a": "alice", "b": "bob"}
    first, second = (make_server([("testing", testing_plugin)], backend=blendbus_redis) for _ in range(2))
    async with serve_http(first, tokens=tokens) as one, serve_http(second, tokens=tokens) as two, \
            PythonPeer(lambda: connect(two, "a")) as peer, httpx2.AsyncClient(timeout=30) as http:
        alice_here, alice_there = (ModernClient(http, u, "a", tasks=False, elicitation=True) for u in (one, two))
        call = {"name": "blender_test_ask", "arguments": {"question": "Which replica?"}}
        asked = (await alice_here("tools/call", call))["result"]
        assert asked["resultType"] == "input_required"
        (ask_id, request), = asked["inputRequests"].items()
        assert request["method"] == "elicitation/create" and request["params"]["message"] == "Which replica?"
        state = asked["requestState"]
        [job_id] = await first.hub.jobs.in_flight("alice", peer.uuid)
        assert job_id.removeprefix("j-") not in state  # sealed: the job it names cannot be read off it
        answer = {**call, "inputResponses": {ask_id: {"action": "accept", "content": {"name": "second"}}}}
        tampered = state[:-6] + ("A" * 6 if not state.endswith("A" * 6) else "B" * 6)
        for who, presented in ((alice_here, tampered), (ModernClient(http, one, "b", tasks=False, elicitation=True), state)):
            refused = await who("tools/call", {**answer, "requestState": presented})
            assert refused["error"]["code"] == -32602, refused
        done = (await alice_there("tools/call", {**answer, "requestState": state}))["result"]
        assert done["structuredContent"]["result"] == {"action": "accept", "content": {"name": "second"}, "reason": ""}
        plain = (await ModernClient(http, one, "a", tasks=False)("tools/call", call))["result"]
        assert plain["structuredContent"]["result"]["action"] == "cancel"  # no elicitation declared: never asked
        assert "did not declare elicitation" in plain["structuredContent"]["result"]["reason"]


async def _asked_and_left(url: str, http: Any) -> None:
    """A 2026-07-28 caller is asked, and never comes back with an answer."""
    from blendbus.testing.raw import ModernClient

    asked = (await ModernClient(http, url, "a", tasks=False, elicitation=True)(
        "tools/call", {"name": "blender_test_ask", "arguments": {"question": "Still there?"}}))["result"]
    assert asked["resultType"] == "input_required"


async def test_a_question_nobody_answers_ends_its_job(blendbus_server, monkeypatch):
    """The caller left: when the question's time is up the job hears `cancel` and ends, instead of
    holding its peer's worker for ever (the peer keeps that time itself: a replica may be gone too)."""
    import httpx2

    monkeypatch.setattr(p, "ASK_TIMEOUT_S", 1.0)
    async with serve_http(blendbus_server, tokens={"a": "alice"}) as url, \
            PythonPeer(lambda: connect(url, "a")) as peer, httpx2.AsyncClient(timeout=30) as http:
        await _asked_and_left(url, http)
        [job_id] = await blendbus_server.hub.jobs.in_flight("alice", peer.uuid)
        async with connect(url, "a") as client:
            env = await call_envelope(client, "blender_get_job", {"job_id": job_id, "wait_s": 30})
    assert env["status"] == p.COMPLETED
    assert env["result"]["action"] == "cancel" and env["result"]["reason"] == p.UNANSWERED


async def test_a_peer_that_leaves_ends_the_jobs_waiting_for_answers(blendbus_server):
    """A job waiting for an answer on a peer's worker thread is cancelled when the peer goes: no
    thread outlives its peer (it would hold the process's exit)."""
    import httpx2

    async with serve_http(blendbus_server, tokens={"a": "alice"}) as url, httpx2.AsyncClient(timeout=30) as http:
        peer = await PythonPeer(lambda: connect(url, "a")).start()
        await _asked_and_left(url, http)
        [job_id] = await blendbus_server.hub.jobs.in_flight("alice", peer.uuid)
        await peer.kill()

        async def ended() -> list[str]:
            return [job.status for job in peer.core.recent if job.job_id == job_id]

        assert await eventually(ended, "the waiting job ends", 10) == [p.CANCELLED]


class Model:
    """A sampling callback: a stand-in for the host's model, which answers with a fixed word."""

    def __init__(self) -> None:
        self.asked: list[types.CreateMessageRequestParams] = []

    async def __call__(self, context: Any, params: types.CreateMessageRequestParams) -> types.CreateMessageResult:
        self.asked.append(params)
        return types.CreateMessageResult(role="assistant", content=types.TextContent(type="text", text="Copper"),
                                         model="stand-in-1", stop_reason="endTurn")


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_a_handler_asks_the_callers_model(blendbus_server, mode):
    """`yield job.sample(...)`: sampling/createMessage on the call's stream (2025-11-25), or an
    input_required round (2026-07-28); a client without sampling is never asked."""
    model = Model()
    async with serve_http(blendbus_server) as url, PythonPeer(lambda: connect(url)):
        async with connect(url, mode=mode, sampling_callback=model) as client:
            env = await call_envelope(client, "blender_test_sample", {"prompt": "A metal for a teapot?"})
        async with connect(url, mode=mode) as plain:
            refused = await call_envelope(plain, "blender_test_sample", {"prompt": "Anyone?"})
    assert env["result"] == {"action": "accept", "text": "Copper", "model": "stand-in-1", "reason": ""}
    asked = model.asked[0]
    assert asked.messages[0].content.text == "A metal for a teapot?" and asked.max_tokens == 100
    assert asked.system_prompt == "Answer in one word."
    assert refused["result"]["action"] == "cancel" and "did not declare sampling" in refused["result"]["reason"]


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_a_handler_sends_the_person_to_a_page(blendbus_server, mode):
    """`yield job.ask_url(message, url)`: URL-mode elicitation, in both eras; the page's address reaches
    the client, and only the action comes back."""
    person = Person()
    async with serve_http(blendbus_server) as url, PythonPeer(lambda: connect(url)), \
            connect(url, mode=mode, elicitation_callback=person) as client:
        env = await call_envelope(client, "blender_test_visit", {"url": "https://licences.example/accept"})
    assert env["result"] == {"action": "accept", "reason": ""}
    (asked,) = person.asked
    assert asked.mode == "url" and asked.url == "https://licences.example/accept"
