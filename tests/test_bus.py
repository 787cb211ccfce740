"""Bus semantics through the real MCP client and the Python test peer (the addon's own transport)."""

from __future__ import annotations

import asyncio
import json

import anyio
import pytest
from mcp import Client

from blendbus import protocol as p
from blendbus.dispatch import PeerAuthError
from blendbus.testing import PythonPeer, call_envelope, eventually, serve_http

pytestmark = pytest.mark.anyio


def assert_envelope(result, status: str) -> dict:
    env = result.structured_content
    assert env is not None and env["status"] == status, env
    assert json.loads(result.content[0].text) == env
    assert result.is_error is (status != p.COMPLETED)
    return env


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_command_and_job_dispatch_round_trip(blendbus_server, blendbus_peer_factory, mode):
    peer = await blendbus_peer_factory(mode=mode)
    async with Client(blendbus_server.mcp, mode=mode) as client:
        env = assert_envelope(await client.call_tool("blender_test_echo", {"value": {"a": [1, 2.5, None]}}), "completed")
        assert env["result"] == {"echo": {"a": [1, 2.5, None]}}  # decoded, not a JSON string
        assert env["target_uuid"] == peer.uuid and env["command"] == "test_echo" and env["job_id"].startswith("j-")
        env = assert_envelope(await client.call_tool("blender_send_message", {
            "payload": {"message_type": "job_dispatch", "job_id": "my-job", "script": "print(sum(range(5)))"}}),
            "completed")
        assert env["result"] == "10\n" and env["job_id"] == "my-job"
        env = assert_envelope(await client.call_tool("blender_send_message", {
            "payload": {"message_type": "command_dispatch", "command": "test_echo", "params": {"value": 3}}}),
            "completed")
        assert env["result"] == {"echo": 3}


async def test_routing_statuses(blendbus_server, blendbus_peer_factory, blendbus_client):
    env = await call_envelope(blendbus_client, "blender_test_noop")
    assert env["status"] == p.NO_CLIENT and "blendbus peer" in env["error"]
    one = await blendbus_peer_factory(uuid="peer-one")
    two = await blendbus_peer_factory(uuid="peer-two")
    env = await call_envelope(blendbus_client, "blender_test_noop")
    assert env["status"] == p.AMBIGUOUS_TARGET and env["result"]["candidates"] == ["peer-one", "peer-two"]
    env = await call_envelope(blendbus_client, "blender_test_noop", {"target_uuid": "peer-three"})
    assert env["status"] == p.UNKNOWN_TARGET and "peer-three" in env["error"]
    for peer in (one, two):
        env = await call_envelope(blendbus_client, "blender_test_echo", {"value": 1, "target_uuid": peer.uuid})
        assert env["status"] == p.COMPLETED and env["target_uuid"] == peer.uuid


async def test_failures_name_their_cause(blendbus_server, blendbus_peer_factory, blendbus_client):
    await blendbus_peer_factory()
    env = await call_envelope(blendbus_client, "blender_test_fail", {"message": "the handler says no"})
    assert env["status"] == p.FAILED and "RuntimeError: the handler says no" in env["error"]
    env = await call_envelope(blendbus_client, "blender_test_gated", {"value": 1})
    assert env["status"] == p.FAILED and "testing.gated" in env["error"]
    env = await call_envelope(blendbus_client, "blender_send_message",
                              {"payload": {"message_type": "job_dispatch", "script": "print('a')\n1/0"}})
    assert env["status"] == p.FAILED and "ZeroDivisionError" in env["error"] and env["result"] == "a\n"


async def test_bad_arguments_are_refused_before_dispatch(blendbus_server, blendbus_peer_factory, blendbus_client):
    peer = await blendbus_peer_factory()
    cases = [
        ({}, "value"),
        ({"value": 1, "valu": 2}, "valu"),
        ({"value": 1, "timeout_s": -1}, "timeout_s"),
        ({"value": 1, "target_uuid": 5}, "target_uuid"),
    ]
    for arguments, field in cases:
        result = await blendbus_client.call_tool("blender_test_echo", arguments)
        env = assert_envelope(result, p.INVALID)
        assert field in env["error"] and env["job_id"] is None
    result = await blendbus_client.call_tool("blender_test_sleep", {"seconds": "soon"})
    assert "seconds" in assert_envelope(result, p.INVALID)["error"]
    assert not peer.core.recent and not peer.core.link.registrations > 1  # the peer ran nothing


async def test_timeout_then_late_reply_through_get_job(blendbus_server, blendbus_peer_factory, blendbus_client):
    await blendbus_peer_factory()
    env = await call_envelope(blendbus_client, "blender_test_sleep", {"seconds": 0.8, "timeout_s": 0.1})
    assert env["status"] == p.TIMEOUT and env["job_id"] in env["error"] and "still running" in env["error"]
    now = await call_envelope(blendbus_client, "blender_get_job", {"job_id": env["job_id"]})
    assert now["status"] == p.RUNNING  # the job's real state, not the caller's deadline
    late = await call_envelope(blendbus_client, "blender_get_job", {"job_id": env["job_id"], "wait_s": 10})
    assert late["status"] == p.COMPLETED and late["result"] == 0.8


async def test_send_message_without_waiting(blendbus_server, blendbus_peer_factory, blendbus_client):
    await blendbus_peer_factory()
    sent = await blendbus_client.call_tool("blender_send_message", {"wait": False, "payload": {
        "message_type": "command_dispatch", "command": "test_sleep", "params": {"seconds": 0.3}}})
    env = sent.structured_content
    assert not sent.is_error and env["status"] == p.QUEUED and env["job_id"] and env["target_uuid"]
    done = await call_envelope(blendbus_client, "blender_get_job", {"job_id": env["job_id"], "wait_s": 10})
    assert done["status"] == p.COMPLETED and done["result"] == 0.3
    feed = await call_envelope(blendbus_client, "blender_watch_bus", {"cursor": 0})
    assert {"kind": "job_update", "job_id": env["job_id"], "status": "completed"}.items() <= next(
        e for e in feed["events"] if e["kind"] == "job_update").items()


async def test_progress_reaches_the_client(blendbus_server, blendbus_peer_factory, blendbus_client):
    await blendbus_peer_factory()
    seen: list[tuple[float, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append((progress, message))

    result = await blendbus_client.call_tool("blender_test_sleep", {"seconds": 0.2, "steps": 4},
                                             progress_callback=on_progress)
    assert_envelope(result, p.COMPLETED)
    for _ in range(50):  # progress notifications may trail the result by a tick
        if len(seen) >= 5:
            break
        await asyncio.sleep(0.02)
    assert seen[0][1].startswith("running on ")  # first, that the peer took it
    assert [s[0] for s in seen[1:]] == [0.25, 0.5, 0.75, 1.0] and seen[-1][1] == "step 4 of 4"


async def test_vanished_peer_fails_its_jobs_fast(blendbus_server, blendbus_peer_factory, blendbus_client):
    peer = await blendbus_peer_factory()

    async def kill_soon() -> None:
        await asyncio.sleep(0.3)
        await peer.kill()

    killer = asyncio.ensure_future(kill_soon())
    env = await call_envelope(blendbus_client, "blender_test_sleep", {"seconds": 20, "timeout_s": 25})
    await killer
    assert env["status"] == p.LOST and peer.uuid in env["error"]
    clients = await call_envelope(blendbus_client, "blender_list_clients")
    assert clients["clients"] == []


async def test_cancellation_drops_queued_and_flags_running_jobs(blendbus_server, blendbus_peer_factory):
    peer = await blendbus_peer_factory(concurrency=1)
    async with Client(blendbus_server.mcp) as a, Client(blendbus_server.mcp) as b:
        running = asyncio.ensure_future(a.call_tool("blender_test_sleep", {"seconds": 1.0, "steps": 10}))
        await asyncio.sleep(0.3)
        with anyio.move_on_after(0.3):  # cancels the MCP request -> the job
            await b.call_tool("blender_test_echo", {"value": "never runs"})
        await running
    events, _ = await blendbus_server.hub.peers.events_since("local", 0, 0)
    [echo_id] = [e.data["job_id"] for e in events if e.kind == "dispatch" and e.data["command"] == "test_echo"]
    echo = await blendbus_server.hub.jobs.get("local", echo_id)
    assert echo.status == p.CANCELLED and "cancelled by the caller" in echo.error
    assert all(r.command != "test_echo" for r in peer.core.recent)  # the peer dropped it unrun


async def test_cancelling_a_job_still_on_the_server_drops_it(blendbus_server):
    """A job not yet taken by any poll is withdrawn from the queue and never delivered."""
    hub = blendbus_server.hub
    peer = await hub.register_peer("local", "idle-peer")  # registered, not polling yet
    call = asyncio.ensure_future(hub.dispatch("local", p.command_dispatch("j-x", "test_noop", {}),
                                              command="test_noop", target_uuid=None, timeout=30))
    await asyncio.sleep(0.05)
    assert (await hub.peers.list("local"))[0].queued == 1
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    assert (await hub.peers.list("local"))[0].queued == 0
    assert (await hub.jobs.get("local", "j-x")).status == p.CANCELLED
    assert await hub.poll("local", "idle-peer", peer.token, [], 0) == []


async def test_only_the_target_peer_may_reply(blendbus_server, blendbus_peer_factory, blendbus_client):
    owner = await blendbus_peer_factory(uuid="owner")
    other = await blendbus_peer_factory(uuid="other")
    call = asyncio.ensure_future(call_envelope(blendbus_client, "blender_test_sleep",
                                               {"seconds": 3, "target_uuid": "owner"}))

    async def sent() -> list[str]:
        return await blendbus_server.hub.jobs.in_flight("local", "owner")

    [job_id] = await eventually(sent, "the job is in flight", 10)
    forged = await blendbus_client.call_tool("blender_job_update", {
        "job_id": job_id, "status": "completed", "result": "forged",
        "client_uuid": "other", "peer_token": other.link.token})
    assert forged.is_error and "another peer" in forged.structured_content["error"]
    stolen = await blendbus_client.call_tool("blender_job_update", {
        "job_id": job_id, "status": "completed", "result": "forged", "client_uuid": "owner", "peer_token": "guess"})
    assert stolen.is_error and stolen.structured_content["code"] == "PeerAuthError"
    assert (await call)["result"] == 3
    # A duplicate reply after completion changes nothing; a reply for a job never sent is refused.
    again = await call_envelope(blendbus_client, "blender_job_update", {
        "job_id": job_id, "status": "failed", "error": "late", "client_uuid": "owner", "peer_token": owner.link.token})
    assert again["accepted"] is False and again["status"] == p.COMPLETED
    unknown = await blendbus_client.call_tool("blender_job_update", {
        "job_id": "j-never", "status": "completed", "client_uuid": "owner", "peer_token": owner.link.token})
    assert unknown.is_error and "no job" in unknown.structured_content["error"]


async def test_hundred_concurrent_calls_across_four_peers(blendbus_server, blendbus_peer_factory, blendbus_client):
    peers = [await blendbus_peer_factory(uuid=f"p{i}") for i in range(4)]

    async def one(i: int) -> tuple[int, dict]:
        target = peers[i % 4].uuid
        return i, await call_envelope(blendbus_client, "blender_test_echo", {"value": i, "target_uuid": target})

    results = await asyncio.gather(*(one(i) for i in range(100)))
    for i, env in results:
        assert env["status"] == p.COMPLETED and env["result"] == {"echo": i} and env["target_uuid"] == f"p{i % 4}"


async def test_users_are_isolated_over_http(blendbus_server):
    tokens = {"alice-token": "alice", "bob-token": "bob"}
    from blendbus.client import connect

    async with serve_http(blendbus_server, tokens=tokens) as url:
        async with PythonPeer(lambda: connect(url, "alice-token"), uuid="alice-blender") as peer:
            async with connect(url, "alice-token") as alice, connect(url, "bob-token") as bob:
                env = await call_envelope(alice, "blender_test_echo", {"value": "hi"})
                assert env["status"] == p.COMPLETED and env["target_uuid"] == peer.uuid
                assert (await call_envelope(bob, "blender_test_echo", {"value": 1}))["status"] == p.NO_CLIENT
                assert (await call_envelope(bob, "blender_list_clients"))["clients"] == []
                snoop = await call_envelope(bob, "blender_get_job", {"job_id": env["job_id"]})
                assert snoop["status"] == p.FAILED and snoop["result"] is None
                aimed = await call_envelope(bob, "blender_test_echo", {"value": 1, "target_uuid": "alice-blender"})
                assert aimed["status"] == p.UNKNOWN_TARGET
        with pytest.raises(Exception):
            async with connect(url, "wrong-token") as intruder:
                await intruder.list_tools()


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_both_protocol_eras_over_http(blendbus_server, mode):
    from blendbus.client import connect

    async with serve_http(blendbus_server) as url:
        async with PythonPeer(lambda: connect(url, mode=mode)):
            async with connect(url, mode=mode) as client:
                tools = {t.name for t in (await client.list_tools()).tools}
                assert {"blender_execute_code", "blender_get_job", "blender_test_echo"} <= tools
                env = await call_envelope(client, "blender_execute_code", {"code": "print('era ok')"})
                assert env["status"] == p.COMPLETED and env["result"] == "era ok\n"


async def test_jobs_survive_a_server_restart(tmp_path, blendbus_extra_plugins, blendbus_limits):
    """A job in flight when the server dies is `lost` after restart, then completed by the peer's outbox."""
    from blendbus.client import connect
    from blendbus.testing import make_server

    first = make_server(blendbus_extra_plugins, state_dir=tmp_path, limits=blendbus_limits)
    async with serve_http(first) as url:
        port = int(url.rsplit(":", 1)[1].split("/")[0])
        peer = await PythonPeer(lambda: connect(url)).start()
        async with connect(url) as client:
            done = await call_envelope(client, "blender_test_echo", {"value": "kept"})
            slow = await call_envelope(client, "blender_test_sleep", {"seconds": 1.5, "timeout_s": 0.2})
    await first.hub.jobs.close()
    assert slow["status"] == p.TIMEOUT
    second = make_server(blendbus_extra_plugins, state_dir=tmp_path, limits=blendbus_limits)
    await second.hub.jobs.recover()  # what `blendbus serve` does on start: nothing stays "running" forever
    assert (await second.hub.jobs.get("local", slow["job_id"])).status == p.LOST  # it was running, not finished
    try:
        async with serve_http(second, port=port) as url:
            async with connect(url) as client:
                kept = await call_envelope(client, "blender_get_job", {"job_id": done["job_id"]})
                assert kept["status"] == p.COMPLETED and kept["result"] == {"echo": "kept"}
                for _ in range(200):  # lost ends a wait at once; the peer's late reply still lands
                    late = await call_envelope(client, "blender_get_job", {"job_id": slow["job_id"], "wait_s": 1})
                    if late["status"] == p.COMPLETED:
                        break
                    await asyncio.sleep(0.1)
                assert late["status"] == p.COMPLETED and late["result"] == 1.5
                assert peer.link.registrations >= 2  # it re-registered with the same uuid
    finally:
        await peer.kill()


async def test_batched_updates_are_answered_one_by_one(blendbus_server, blendbus_client):
    hub = blendbus_server.hub
    peer = await hub.register_peer("local", "batcher")
    calls = [asyncio.ensure_future(hub.dispatch("local", p.command_dispatch(f"j-b{i}", "test_noop", {}),
                                                command="test_noop", target_uuid="batcher", timeout=30))
             for i in range(2)]
    await asyncio.sleep(0.05)
    await hub.poll("local", "batcher", peer.token, [], 0)
    answers = await call_envelope(blendbus_client, "blender_job_updates", {
        "client_uuid": "batcher", "peer_token": peer.token, "updates": [
            {"job_id": "j-b0", "status": "completed", "result": 1},
            {"job_id": "j-nope", "status": "completed"},
            {"job_id": "j-b1", "status": "failed", "error": "no"},
        ]})
    assert [a.get("accepted") for a in answers["answers"]] == [True, None, True]
    assert "no job" in answers["answers"][1]["error"]
    done = await asyncio.gather(*calls)
    assert [e["status"] for e in done] == [p.COMPLETED, p.FAILED]
    denied = await blendbus_client.call_tool("blender_job_updates", {
        "client_uuid": "batcher", "peer_token": "wrong", "updates": [{"job_id": "j-b0", "status": "completed"}]})
    assert denied.is_error and denied.structured_content["code"] == "PeerAuthError"


async def test_a_restarted_peer_with_the_same_uuid_fails_the_old_ones_jobs(blendbus_server, blendbus_client):
    hub = blendbus_server.hub
    old = await hub.register_peer("local", "same", instance="first-process")
    call = asyncio.ensure_future(call_envelope(blendbus_client, "blender_test_noop", {"timeout_s": 30}))
    await asyncio.sleep(0.05)
    await hub.poll("local", "same", old.token, [], 0)  # the first process takes the job, then crashes
    with pytest.raises(PeerAuthError, match="held by another live peer"):  # not while the old one may live
        await hub.register_peer("local", "same", instance="second-process")
    env = await call  # the old process stops polling: its job fails within the grace, not at its timeout
    assert env["status"] == p.LOST and "stopped polling" in env["error"]
    await hub.register_peer("local", "same", instance="second-process")  # now the uuid is free
    await hub.register_peer("local", "same", instance="second-process")  # a reconnect of the same process
    assert (await hub.jobs.get("local", env["job_id"])).status == p.LOST


async def test_small_replies_ride_on_polls_and_large_ones_travel_alone(blendbus_server, blendbus_peer_factory,
                                                                      blendbus_client, monkeypatch):
    carried, alone = [], []
    poll, update = blendbus_server.tools.builtin["blender_poll_jobs"], blendbus_server.tools.builtin["blender_job_update"]
    poll_fn, update_fn = poll.fn, update.fn

    async def counting_poll(call, a):
        carried.extend(r["job_id"] for r in a.get("replies", []))
        return await poll_fn(call, a)

    async def counting_update(call, a):
        alone.append(a["job_id"])
        return await update_fn(call, a)

    monkeypatch.setattr(poll, "fn", counting_poll)
    monkeypatch.setattr(update, "fn", counting_update)
    await blendbus_peer_factory()
    small = await call_envelope(blendbus_client, "blender_test_size", {"nbytes": 100})
    large = await call_envelope(blendbus_client, "blender_test_size", {"nbytes": 200_000})
    assert small["status"] == large["status"] == p.COMPLETED and len(large["result"]) == 200_000
    assert small["job_id"] in carried and small["job_id"] not in alone
    assert large["job_id"] in alone and large["job_id"] not in carried


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_prompts_in_both_eras(blendbus_server, mode):
    from mcp.shared.exceptions import MCPError

    async with Client(blendbus_server.mcp, mode=mode) as client:
        listed = {pr.name: pr for pr in (await client.list_prompts()).prompts}
        assert {"build_scene", "inspect_and_fix"} <= set(listed)
        assert [(a.name, a.required) for a in listed["build_scene"].arguments] == [("description", True)]
        got = await client.get_prompt("build_scene", {"description": "a reading corner with a lamp"})
        text = got.messages[0].content.text
        assert "a reading corner with a lamp" in text and "blender_get_polyhaven_status" in text
        with pytest.raises(MCPError, match="needs description"):
            await client.get_prompt("build_scene", {})
        with pytest.raises(MCPError, match="did you mean 'build_scene'"):
            await client.get_prompt("build_scen", {})


async def test_a_cancel_interrupts_a_running_script_and_frees_the_peer(blendbus_server, blendbus_peer_factory,
                                                                       blendbus_client):
    peer = await blendbus_peer_factory(concurrency=1)  # one worker: it must be freed for the next call
    spin = asyncio.ensure_future(call_envelope(blendbus_client, "blender_execute_code", {
        "code": "n = 0\nwhile True:\n    n += 1", "timeout_s": 120}))
    for _ in range(200):
        running = await blendbus_server.hub.jobs.in_flight("local", peer.uuid)
        if running and (await blendbus_server.hub.jobs.get("local", running[0])).status == p.RUNNING:
            break
        await asyncio.sleep(0.02)
    job_id = running[0]
    await asyncio.sleep(0.2)  # it is spinning in Python now
    env = await call_envelope(blendbus_client, "blender_cancel_job", {"job_id": job_id})
    assert env["status"] == p.CANCELLED
    assert (await spin)["status"] == p.CANCELLED  # the waiting caller hears it too
    after = await call_envelope(blendbus_client, "blender_test_echo", {"value": "free", "timeout_s": 10})
    assert after["status"] == p.COMPLETED  # the worker thread was interrupted, not left spinning
    again = await blendbus_client.call_tool("blender_cancel_job", {"job_id": job_id})
    assert again.is_error and "already cancelled" in again.structured_content["error"]


async def test_progress_tells_a_waiting_caller_where_its_job_is(blendbus_server, blendbus_peer_factory,
                                                                blendbus_client):
    blendbus_server.hub.limits.progress_every_s = 0.2
    await blendbus_peer_factory()
    seen: list[tuple[float, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append((progress, message))

    result = await blendbus_client.call_tool("blender_test_sleep", {"seconds": 1.0, "steps": 2},
                                             progress_callback=on_progress)
    assert result.structured_content["status"] == p.COMPLETED
    messages = [m for _, m in seen]
    assert messages[0].startswith("running on py-") and any(m.startswith("running on py-") and "s)" in m
                                                              for m in messages[1:]), messages
    assert "step 2 of 2" in messages
    values = [v for v, _ in seen]
    assert values == sorted(values) and len(set(values)) == len(values)  # each report rises, as MCP requires
