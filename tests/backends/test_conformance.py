"""One suite, every backend: the SQLite/in-process backend and the Redis backend keep the same
promises (backends/base.py). Redis is real: the machine's, under a key prefix of this test's own."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from blendbus import protocol as p
from blendbus.backends import open_backend
from blendbus.backends.backend import Backend, Enqueued, Replied
from blendbus.backends.base import DuplicateJob, JobStoreError, OverQuota, PeerAuthError
from blendbus.dispatch import Hub
from blendbus.limits import Limits
from blendbus.testing import PythonPeer, call_envelope, eventually, in_memory, make_server

pytestmark = pytest.mark.anyio

GRACE_S = 0.6


@pytest.fixture(params=["sqlite", "redis", "cluster"])
def backend_url(request: pytest.FixtureRequest) -> str:
    if request.param == "sqlite":
        return "sqlite"
    return request.getfixturevalue("blendbus_redis" if request.param == "redis" else "blendbus_redis_cluster")


@pytest.fixture
async def backend(backend_url: str) -> AsyncIterator[Backend]:
    made = open_backend(backend_url, state_dir=None, grace_s=GRACE_S, max_jobs_per_user=5, max_bytes_per_user=200_000)
    yield made
    await made.jobs.close()


async def test_the_whole_store_keeps_within_its_caps(backend_url: str) -> None:
    """Over the store's `max_jobs`, every user above their fair share (the cap divided by the users with
    jobs) gives way down to it, oldest finished jobs first: at once on SQLite, at the next sweep
    (`prune`, every minute) on Redis, whose scripts each see one user only."""
    made = open_backend(backend_url, state_dir=None, grace_s=GRACE_S, max_jobs=6, max_jobs_per_user=5)
    jobs = made.jobs
    try:
        for user in ("a", "b"):
            for i in range(5):
                await jobs.create(user, f"j{i}", kind=p.COMMAND_DISPATCH, command="c", target_uuid="peer")
                await jobs.advance(user, f"j{i}", p.COMPLETED, result=i)
        await jobs.prune()
        assert [(await jobs.usage(user))[0] for user in ("a", "b")] == [3, 3]
        assert [await jobs.get("a", f"j{i}") is not None for i in range(5)] == [False, False, True, True, True]
    finally:
        await jobs.close()


async def test_a_status_only_moves_forward(backend: Backend) -> None:
    jobs = backend.jobs
    await jobs.create("u", "j1", kind=p.COMMAND_DISPATCH, command="c", target_uuid="peer")
    with pytest.raises(DuplicateJob):
        await jobs.create("u", "j1", kind=p.COMMAND_DISPATCH, command="c", target_uuid="peer")
    assert (await jobs.get("u", "j1")).status == p.QUEUED and await jobs.in_flight("u", "peer") == ["j1"]
    assert await jobs.advance("u", "j1", p.RUNNING)
    assert await jobs.advance("u", "j1", p.COMPLETED, result={"n": 1})
    assert not await jobs.advance("u", "j1", p.FAILED, error="late")  # the first final word stands
    assert not await jobs.advance("u", "j1", p.RUNNING)
    job = await jobs.get("u", "j1")
    assert job.status == p.COMPLETED and job.result == {"n": 1} and job.error == ""
    assert await jobs.in_flight("u", "peer") == [] and await jobs.get("other", "j1") is None
    for ending in (p.CANCELLED, p.LOST, p.TIMEOUT):  # every status past running ends "in flight"
        await jobs.create("u", ending, kind=p.COMMAND_DISPATCH, command="c", target_uuid="peer")
        await jobs.advance("u", ending, ending, error="stopped")
    assert await jobs.in_flight("u", "peer") == []
    assert await jobs.advance("u", p.LOST, p.COMPLETED, result=1)  # a late reply still lands


async def test_the_users_with_jobs_or_peers_are_known(backend: Backend) -> None:
    """The operator's view of the whole service starts from these lists."""
    assert await backend.jobs.users() == [] and await backend.peers.users() == []
    for user in ("bob", "alice", "a/b c"):
        await backend.jobs.create(user, "j", kind=p.COMMAND_DISPATCH, command="c", target_uuid=None)
    await backend.peers.register("carol", "p1", "cred", "proc", {}, max_peers=2)
    await backend.peers.register("alice", "p2", "cred", "proc", {}, max_peers=2)
    assert await backend.jobs.users() == ["a/b c", "alice", "bob"]
    assert await backend.peers.users() == ["alice", "carol"]
    await backend.peers.unregister("carol", "p1")
    assert await backend.peers.users() == ["alice"]


async def test_results_and_progress_round_trip(backend: Backend) -> None:
    jobs = backend.jobs
    await jobs.create("u", "big", kind=p.COMMAND_DISPATCH, command="c", target_uuid=None)
    await jobs.set_progress("u", "big", 0.25, "a quarter")
    job = await jobs.get("u", "big")
    assert (job.progress, job.message, job.target_uuid) == (0.25, "a quarter", None)
    blob = {"text": "é" * 60_000, "list": list(range(1000))}
    await jobs.advance("u", "big", p.COMPLETED, result=blob)
    assert (await jobs.get("u", "big")).result == blob
    assert (await jobs.get("u", "big")).envelope()["progress"] == {"fraction": 0.25, "message": "a quarter"}


@pytest.mark.parametrize("result", ["é€ line\n" * 400_000, {"text": "x" * 3_000_000, "n": [1, 2.5, None]}, "short", [1]])
async def test_a_page_of_a_result_is_read_alone(backend: Backend, result) -> None:
    """The stored form is the result text that pages are cut from: any slice of it is read directly."""
    from blendbus.paging import result_format, result_text

    jobs = backend.jobs
    await jobs.create("u", "r", kind=p.COMMAND_DISPATCH, command="c", target_uuid="peer")
    assert await jobs.read_result("u", "r", 0, 10) is None  # no result yet
    await jobs.advance("u", "r", p.COMPLETED, result=result)
    text = result_text(result).encode()
    meta = await jobs.get("u", "r", result=False)
    assert meta.result_data is None and meta.result_bytes == len(text) and meta.result_format == result_format(result)
    assert (await jobs.get("u", "r")).result == result  # whole, it decodes to what was stored
    for offset, length in ((0, 100), (len(text) // 2, 65_536), (max(0, len(text) - 5), 100), (len(text) + 10, 100)):
        data, total, fmt = await jobs.read_result("u", "r", offset, length)
        assert data == text[offset:offset + length] and total == len(text) and fmt == result_format(result)
    assert await jobs.read_result("u", "nope", 0, 10) is None and await jobs.read_result("v", "r", 0, 10) is None


async def test_a_user_lists_their_newest_jobs_without_results(backend: Backend) -> None:
    jobs = backend.jobs
    for i in range(4):
        await jobs.create("u", f"j{i}", kind=p.COMMAND_DISPATCH, command="c", target_uuid="peer")
        await asyncio.sleep(0.01)
    await jobs.advance("u", "j1", p.COMPLETED, result="x" * 10_000)
    await jobs.create("v", "theirs", kind=p.COMMAND_DISPATCH, command="c", target_uuid="peer")
    newest = await jobs.recent("u", 2)
    assert [j.job_id for j in newest] == ["j3", "j2"]
    older = await jobs.recent("u", 10, before=newest[-1].created)
    assert [j.job_id for j in older] == ["j1", "j0"] and older[0].status == p.COMPLETED
    assert older[0].result_data is None  # a listing does not load results


async def test_each_user_is_kept_within_their_caps(backend: Backend) -> None:
    jobs = backend.jobs
    for i in range(12):
        await jobs.create("busy", f"b{i}", kind=p.COMMAND_DISPATCH, command="c", target_uuid="peer")
        await jobs.advance("busy", f"b{i}", p.COMPLETED, result=i)
    await jobs.create("quiet", "q", kind=p.COMMAND_DISPATCH, command="c", target_uuid="peer")
    count, size = await jobs.usage("busy")
    assert count == 5 and 0 < size <= 200_000
    assert await jobs.get("busy", "b0") is None and (await jobs.get("busy", "b11")).result == 11  # oldest went
    assert await jobs.get("quiet", "q") is not None  # nobody else's jobs make room
    await jobs.create("busy", "fat", kind=p.COMMAND_DISPATCH, command="c", target_uuid="peer")
    await jobs.advance("busy", "fat", p.COMPLETED, result="x" * 150_000)
    count, size = await jobs.usage("busy")
    assert size <= 200_000 and (await jobs.get("busy", "fat")) is not None


async def test_jobs_in_flight_and_their_payloads_count_against_the_caps(backend: Backend) -> None:
    """What waits for Blender cannot be evicted to make room: a job that would not fit is refused."""
    jobs = backend.jobs
    for i in range(3):
        await jobs.create("u", f"q{i}", kind=p.COMMAND_DISPATCH, command="c", target_uuid="peer", payload_bytes=60_000)
    with pytest.raises(OverQuota, match="200000 bytes"):
        await jobs.create("u", "q3", kind=p.COMMAND_DISPATCH, command="c", target_uuid="peer", payload_bytes=60_000)
    count, size = await jobs.usage("u")
    assert count == 3 and 180_000 < size <= 200_000 and await jobs.get("u", "q3") is None
    await jobs.advance("u", "q0", p.RUNNING)
    assert (await jobs.usage("u"))[1] == size  # taken but not finished: still held
    await jobs.advance("u", "q0", p.COMPLETED, result="ok")  # finished: its payload no longer counts
    assert (await jobs.usage("u"))[1] < 130_000
    await jobs.create("u", "q3", kind=p.COMMAND_DISPATCH, command="c", target_uuid="peer", payload_bytes=60_000)
    for i in range(5):
        await jobs.create("v", f"o{i}", kind=p.COMMAND_DISPATCH, command="c", target_uuid="peer")
    with pytest.raises(OverQuota, match="5 jobs"):  # the job cap counts jobs in flight too
        await jobs.create("v", "o5", kind=p.COMMAND_DISPATCH, command="c", target_uuid="peer")
    await jobs.advance("v", "o0", p.CANCELLED, error="stopped")
    await jobs.create("v", "o5", kind=p.COMMAND_DISPATCH, command="c", target_uuid="peer")  # o0 made room
    assert await jobs.get("v", "o0") is None and (await jobs.usage("v"))[0] == 5


async def test_registration_binds_a_uuid_to_its_credential_and_process(backend: Backend) -> None:
    peers = backend.peers
    first = await peers.register("u", "p1", "cred-a", "proc-1", {"blender_version": "5.0.1", "handlers": []},
                                 max_peers=2)
    assert (await peers.authenticate("u", "p1", first.token)).info["blender_version"] == "5.0.1"
    with pytest.raises(PeerAuthError):
        await peers.authenticate("u", "p1", "guess")
    with pytest.raises(PeerAuthError):
        await peers.authenticate("someone-else", "p1", first.token)
    for credential, instance in (("cred-b", "proc-1"), ("cred-a", "proc-2")):
        with pytest.raises(PeerAuthError, match="held by another live peer"):
            await peers.register("u", "p1", credential, instance, {}, max_peers=2)
    again = await peers.register("u", "p1", "cred-a", "proc-1", {"gates": {"x": True}}, max_peers=2)
    assert again.token != first.token and again.info == {"blender_version": "5.0.1", "handlers": [], "gates": {"x": True}}
    with pytest.raises(PeerAuthError):
        await peers.authenticate("u", "p1", first.token)  # a re-registration retires the old token
    await peers.register("u", "p2", "cred-a", "proc-3", {}, max_peers=2)
    with pytest.raises(PermissionError, match="the most allowed"):
        await peers.register("u", "p3", "cred-a", "proc-4", {}, max_peers=2)
    await peers.note_handler("u", "p1", {"package": "pkg", "version": "1"})
    listed = {rec.uuid: rec for rec in await peers.list("u")}
    assert set(listed) == {"p1", "p2"} and listed["p1"].info["handlers"] == [{"package": "pkg", "version": "1"}]
    assert await peers.unregister("u", "p2") and not await peers.unregister("u", "p2")


async def test_resolution_names_the_candidates(backend: Backend) -> None:
    peers = backend.peers
    assert (await peers.resolve("u", None)).status == p.NO_CLIENT
    await peers.register("u", "a", "c", "i", {}, max_peers=9)
    assert (await peers.resolve("u", None)).uuid == "a"
    await peers.register("u", "b", "c", "j", {}, max_peers=9)
    ambiguous = await peers.resolve("u", None)
    assert ambiguous.status == p.AMBIGUOUS_TARGET and ambiguous.candidates == ("a", "b")
    assert (await peers.resolve("u", "b")).uuid == "b"
    unknown = await peers.resolve("u", "zz")
    assert unknown.status == p.UNKNOWN_TARGET and "a, b" in unknown.error
    assert (await peers.resolve("another-user", None)).status == p.NO_CLIENT


async def test_a_payload_is_handed_out_until_acknowledged(backend: Backend) -> None:
    peers = backend.peers
    rec = await peers.register("u", "p", "c", "i", {}, max_peers=9)
    await peers.push("u", "p", "j1", p.command_dispatch("j1", "noop", {}))
    await peers.push("u", "p", "j2", p.command_dispatch("j2", "noop", {}))
    assert (await peers.resolve("u", "p")).backlog == 2
    assert await peers.withdraw("u", "p", "j2") and not await peers.withdraw("u", "p", "j2")
    payloads, fresh = await peers.take("u", "p", rec.token, [], 0)
    assert [x["job_id"] for x in payloads] == ["j1"] and fresh == ["j1"]
    payloads, fresh = await peers.take("u", "p", rec.token, [], 0)  # not acknowledged: handed out again
    assert [x["job_id"] for x in payloads] == ["j1"] and fresh == []
    cancel = p.cancel("j1")
    await peers.push("u", "p", p.ack_key(cancel), cancel)
    payloads, fresh = await peers.take("u", "p", rec.token, ["j1"], 0)
    assert payloads == [cancel] and fresh == []  # a cancel is delivered, never "started"
    assert await peers.take("u", "p", rec.token, [p.ack_key(cancel)], 0) == ([], [])
    with pytest.raises(PeerAuthError):
        await peers.take("u", "p", "wrong", [], 0)
    with pytest.raises(LookupError):
        await peers.push("u", "gone", "j3", p.command_dispatch("j3", "noop", {}))


async def test_an_open_poll_wakes_when_a_payload_arrives(backend: Backend) -> None:
    peers = backend.peers
    rec = await peers.register("u", "p", "c", "i", {}, max_peers=9)
    poll = asyncio.ensure_future(peers.take("u", "p", rec.token, [], 20))

    async def polling() -> bool:
        return (await peers.list("u"))[0].polling

    await eventually(polling, "the open poll shows in the peer's record", 10)
    await peers.push("u", "p", "j1", p.command_dispatch("j1", "noop", {}))
    payloads, _ = await asyncio.wait_for(poll, 5)
    assert payloads[0]["job_id"] == "j1"


async def test_a_silent_peer_expires_once(backend: Backend) -> None:
    peers = backend.peers
    await peers.register("u", "quiet", "c", "i", {}, max_peers=9)
    loud = await peers.register("u", "loud", "c", "j", {}, max_peers=9)
    replier = await peers.register("u", "replier", "c", "k", {}, max_peers=9)
    poll = asyncio.ensure_future(peers.take("u", "loud", loud.token, [], 4))
    gone: list[tuple[str, str]] = []
    for _ in range(25):
        gone += await peers.expired()
        await peers.authenticate("u", "replier", replier.token, touch=True)  # it keeps replying
        await asyncio.sleep(0.1)
    assert gone == [("u", "quiet")]  # handed out once; the polling and the replying peers stay
    await poll


async def test_a_reaped_peer_is_claimed_again_until_it_is_unregistered(backend: Backend) -> None:
    """The replica that claims a lapsed peer may die, or lose its store, before it has ended the peer's
    jobs and unregistered it: the claim lapses and the peer is claimed again. Once unregistered, never."""
    peers = backend.peers
    peers.claim_s = 0.2
    await peers.register("u", "quiet", "c", "i", {}, max_peers=9)
    await asyncio.sleep(GRACE_S + 0.2)
    assert await peers.expired() == [("u", "quiet")]  # and its claimer is gone without a word
    await asyncio.sleep(0.5)
    assert await peers.expired() == [("u", "quiet")]
    await peers.unregister("u", "quiet")
    await asyncio.sleep(0.5)
    assert await peers.expired() == []


async def test_a_reaper_that_fails_midway_is_finished_by_the_next(backend: Backend) -> None:
    """The store fails while a reaper ends a lapsed peer's jobs: the peer stays registered and claimed,
    and once the claim lapses the next reap ends its jobs and unregisters it."""
    hub = Hub(backend, Limits(peer_grace_s=GRACE_S))
    backend.peers.claim_s = 0.2
    await backend.peers.register("u", "gone", "c", "i", {}, max_peers=9)
    for job_id in ("a", "b"):
        await backend.jobs.create("u", job_id, kind=p.COMMAND_DISPATCH, command="c", target_uuid="gone")
    await asyncio.sleep(GRACE_S + 0.2)
    advance = backend.jobs.advance

    async def store_gone(*args: object, **kwargs: object) -> bool:
        raise JobStoreError("the store went away")

    backend.jobs.advance = store_gone  # type: ignore[method-assign]
    with pytest.raises(JobStoreError):
        await hub.reap()
    backend.jobs.advance = advance  # type: ignore[method-assign]
    assert [peer.uuid for peer in await backend.peers.list("u")] == ["gone"]  # kept: its jobs are open
    await asyncio.sleep(0.5)
    assert await hub.reap() == ["gone"]
    assert [(await backend.jobs.get("u", job_id)).status for job_id in ("a", "b")] == [p.LOST, p.LOST]
    assert await backend.peers.list("u") == []


async def test_the_event_feed_wakes_a_watcher(backend: Backend) -> None:
    peers = backend.peers
    await peers.publish("u", "register", client_uuid="a")
    events, cursor = await peers.events_since("u", 0, 0)
    assert [(e.kind, e.data) for e in events] == [("register", {"client_uuid": "a"})] and cursor == events[0].seq
    watch = asyncio.ensure_future(peers.events_since("u", cursor, 10))
    await asyncio.sleep(0.2)
    await peers.publish("u", "dispatch", job_id="j")
    events, later = await asyncio.wait_for(watch, 5)
    assert [e.kind for e in events] == ["dispatch"] and later == cursor + 1
    assert (await peers.events_since("other", 0, 0)) == ([], 0)


async def test_the_notifier_counts_calls_and_delivers(backend: Backend) -> None:
    notifier = backend.notifier
    assert await notifier.acquire("u", "a", 2) and await notifier.acquire("u", "b", 2)
    assert not await notifier.acquire("u", "c", 2) and await notifier.acquire("v", "a", 2)
    await notifier.release_call("u", "a")
    await notifier.release_call("u", "a")  # twice: harmless
    assert await notifier.acquire("u", "c", 2) and not await notifier.acquire("u", "d", 2)
    seen: list[tuple[float | None, str | None, str | None]] = []

    async def on_progress(fraction: float | None, message: str | None, level: str | None = None) -> None:
        seen.append((fraction, message, level))

    fut = notifier.register("u", "j", on_progress)
    await notifier.progress("u", "j", 0.5, "half")
    await notifier.progress("u", "j", None, "a log line", "warning")
    await notifier.deliver("u", "j", {"status": "completed"})
    assert await asyncio.wait_for(fut, 5) == {"status": "completed"}
    assert seen == [(0.5, "half", None), (None, "a log line", "warning")]
    notifier.release("u", "j", fut, on_progress)


def dispatch(job_id: str) -> dict:
    return p.command_dispatch(job_id, "noop", {})


async def test_a_dispatch_is_queued_taken_and_answered_once(backend: Backend) -> None:
    rec = await backend.peers.register("u", "p", "c", "i", {}, max_peers=9)
    one_call = {"command": "noop", "target_uuid": None, "max_calls": 1, "max_queued": 10, "counted": True}
    fut = backend.notifier.register("u", "j1")
    assert await backend.enqueue("u", dispatch("j1"), **one_call) == Enqueued("p")
    assert (await backend.jobs.get("u", "j1")).status == p.QUEUED
    busy = await backend.enqueue("u", dispatch("j2"), **one_call)
    assert busy.status == p.BUSY and "1 calls of yours" in busy.error  # j1's call counts until its job ends
    assert await backend.jobs.get("u", "j2") is None
    with pytest.raises(DuplicateJob):
        await backend.enqueue("u", dispatch("j1"), **{**one_call, "counted": False})
    events, _ = await backend.peers.events_since("u", 0, 0)
    assert [(e.kind, e.data["job_id"], e.data["target_uuid"]) for e in events] == [(p.DISPATCHED, "j1", "p")]

    payloads, fresh = await backend.take("u", "p", rec.token, [], 0)
    assert [x["job_id"] for x in payloads] == ["j1"] and fresh == ["j1"]
    assert (await backend.jobs.get("u", "j1")).status == p.RUNNING
    other = await backend.peers.register("u", "q", "c", "k", {}, max_peers=9)
    with pytest.raises(PeerAuthError):
        await backend.reply("u", "p", "wrong", "j1", p.COMPLETED)
    with pytest.raises(PermissionError):
        await backend.reply("u", "q", other.token, "j1", p.COMPLETED)
    with pytest.raises(LookupError):
        await backend.reply("u", "p", rec.token, "never-sent", p.COMPLETED)
    assert await backend.reply("u", "p", rec.token, "j1", p.RUNNING, progress=0.5, message="half") == \
        Replied(True, p.RUNNING)
    assert (await backend.jobs.get("u", "j1")).progress == 0.5
    large = "x" * (3 * 1024 * 1024)  # stored in pieces
    scene = {"revision": 7, "changes": {"moves": 2, "modified": ["Cube"]}}
    assert await backend.reply("u", "p", rec.token, "j1", p.COMPLETED, result={"text": large}, scene=scene) == \
        Replied(True, p.COMPLETED)
    outcome = await asyncio.wait_for(fut, 5)
    assert outcome["status"] == p.COMPLETED and outcome["result"] == {"text": large}
    assert outcome["revision"] == 7 and outcome["changes"] == scene["changes"]  # the peer's scene account
    stored = await backend.jobs.get("u", "j1")
    assert stored.result == {"text": large} and stored.envelope()["revision"] == 7
    assert (await backend.jobs.get("u", "j1", result=False)).scene == scene
    assert await backend.reply("u", "p", rec.token, "j1", p.FAILED, error="late") == Replied(False, p.COMPLETED)
    backend.notifier.release("u", "j1", fut)
    await backend.notifier.release_call("u", "j1", ended=True)
    events, _ = await backend.peers.events_since("u", 0, 0)
    assert [e.kind for e in events] == [p.DISPATCHED, p.JOB_UPDATE]
    # The job ended, so its call stopped counting; routing refusals record nothing.
    assert (await backend.enqueue("u", dispatch("j3"), **one_call)).uuid is None  # two peers now: ambiguous
    assert (await backend.enqueue("u", dispatch("j3"), **{**one_call, "target_uuid": "p"})) == Enqueued("p")
    await backend.notifier.release_call("u", "j3")
    full = await backend.enqueue("u", dispatch("j4"), **{**one_call, "target_uuid": "p", "max_queued": 1})
    assert full.status == p.BUSY and "already has 2 queued jobs" in full.error  # j1 unacknowledged, j3
    nobody = await backend.enqueue("nobody", dispatch("j5"), **one_call)
    assert nobody.status == p.NO_CLIENT and await backend.jobs.get("nobody", "j5") is None


async def test_a_call_end_to_end(backend_url: str, blendbus_extra_plugins) -> None:
    server = make_server(blendbus_extra_plugins, backend=backend_url)
    peer = await PythonPeer(in_memory(server)).start()
    try:
        from mcp import Client

        async with Client(server.mcp) as client:
            env = await call_envelope(client, "blender_test_echo", {"value": "hi"})
            assert env["status"] == p.COMPLETED and env["result"] == {"echo": "hi"}
            listed = await call_envelope(client, "blender_list_clients")
            assert [c["client_uuid"] for c in listed["clients"]] == [peer.uuid]
            again = await call_envelope(client, "blender_get_job", {"job_id": env["job_id"]})
            assert again["result"] == {"echo": "hi"}
    finally:
        await peer.kill()
        await server.hub.stop()
        await server.hub.jobs.close()


async def test_records_expire_and_are_taken_once(backend: Backend) -> None:
    """The built-in authorization server's records: a code is redeemed once, even by two replicas at
    the same moment; a record lives its ttl; the signing key is chosen once."""
    records = backend.records
    assert records is not None
    await records.put("code", "c1", {"user": "alice"}, ttl_s=60)
    assert await records.get("code", "c1") == {"user": "alice"}
    taken = await asyncio.gather(*(records.take("code", "c1") for _ in range(5)))
    assert taken.count({"user": "alice"}) == 1 and taken.count(None) == 4
    await records.put("code", "brief", {"n": 1}, ttl_s=0.05)
    await asyncio.sleep(0.2)
    assert await records.get("code", "brief") is None and await records.take("code", "brief") is None
    first = await records.put_first("key", "signing", {"pem": "one"})
    second = await records.put_first("key", "signing", {"pem": "two"})
    assert first == second == {"pem": "one"}
