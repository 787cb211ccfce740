"""Redis Cluster (`redis+cluster://`): three real masters (`redis-server --cluster-enabled yes`, joined
by `redis-cli --cluster create`). Every script touches one user's keys, which share a hash tag, so
each runs on the one node that holds that user; slots moved while calls run (`redis-cli --cluster
reshard`) lose no job. The conformance suite (test_conformance.py) and the three-replica tests
(test_replicas.py) run on the cluster too."""

from __future__ import annotations

import asyncio
from urllib.parse import quote

import pytest
from redis.cluster import key_slot

from blendbus import protocol as p
from blendbus.backends import open_backend
from blendbus.client import connect
from blendbus.testing import PythonPeer, call_envelope, make_server, serve_http
from blendbus.testing import plugin as testing_plugin

pytestmark = pytest.mark.anyio
USERS = 6


def users_on(slots: set[int], count: int, elsewhere: int) -> list[str]:
    """`count` user names whose keys (hash tag: the user, keys.py) fall in `slots`, then `elsewhere` whose
    keys do not."""
    names = [f"user{i}" for i in range(10_000)]
    inside = [n for n in names if key_slot(quote(n, safe="").encode()) in slots]
    outside = [n for n in names if key_slot(quote(n, safe="").encode()) not in slots]
    return inside[:count] + outside[:elsewhere]


async def test_calls_go_on_while_slots_move(blendbus_redis_cluster_group, blendbus_redis_cluster):
    """Every slot of the first master moves to the second while six users call on; half of them have
    their keys there. Every call is answered, every job is kept and none stays open."""
    group = blendbus_redis_cluster_group
    source, target = [i for i, held in enumerate(group.slots()) if held][:2]  # two masters that hold slots
    users = users_on(group.slots()[source], USERS // 2, USERS - USERS // 2)
    tokens = {f"t{u}": name for u, name in enumerate(users)}
    first, second = (make_server([("testing", testing_plugin)], backend=blendbus_redis_cluster) for _ in range(2))
    async with serve_http(first, tokens=tokens) as one, serve_http(second, tokens=tokens) as two:
        peers = [await PythonPeer(lambda u=u: connect(one, f"t{u}"), uuid=f"p{u}", concurrency=4).start()
                 for u in range(USERS)]
        try:
            moving = asyncio.ensure_future(asyncio.to_thread(group.reshard, len(group.slots()[source]), source,
                                                             target))

            async def caller(u: int) -> list[dict]:
                """Calls one after another until the slots have moved (ten at least), on the other replica."""
                answers: list[dict] = []
                async with connect(two, f"t{u}") as client:
                    while not moving.done() or len(answers) < 10:
                        answers.append(await call_envelope(client, "blender_test_echo", {"value": len(answers)}))
                return answers

            answered = await asyncio.gather(*(caller(u) for u in range(USERS)))
            await moving
            for u, answers in enumerate(answered):
                unanswered = [env for env in answers if env["status"] != p.COMPLETED]
                assert not unanswered, [env["error"] for env in unanswered]
                assert [env["result"]["echo"] for env in answers] == list(range(len(answers)))
                assert await first.hub.jobs.in_flight(users[u], f"p{u}") == []
                fetched = await first.hub.get_job(users[u], answers[0]["job_id"])
                assert fetched["status"] == p.COMPLETED  # kept, wherever its slot went
        finally:
            for peer in peers:
                await peer.kill()
    assert not group.slots()[source]  # every slot of it moved, with the keys of half the users


async def test_a_script_waits_while_its_slot_is_half_moved(blendbus_redis_cluster_group, blendbus_redis_cluster):
    """A reshard moves a slot's keys a few at a time: in between, the slot is MIGRATING on the node it
    leaves and IMPORTING on the other, with keys on both. A script then neither fails nor runs on the
    half it finds (it would count the user's jobs from nothing, and the rest of the keys could not move):
    it waits, and runs once the slot has moved."""
    import redis

    group = blendbus_redis_cluster_group
    source, target = [i for i, held in enumerate(group.slots()) if held][:2]
    user = users_on(group.slots()[source], 1, 0)[0]
    slot = key_slot(quote(user, safe="").encode())
    ids = group.node_ids()
    nodes = [redis.Redis(port=port) for port in group.ports]
    backend = open_backend(blendbus_redis_cluster, state_dir=None, grace_s=5)
    try:
        await backend.peers.register(user, "peer", "c", "i", {}, max_peers=9)
        for job_id in ("one", "two", "three"):
            await backend.jobs.create(user, job_id, kind=p.COMMAND_DISPATCH, command="c", target_uuid="peer")
        nodes[target].execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", ids[source])
        nodes[source].execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", ids[target])
        keys = nodes[source].execute_command("CLUSTER", "GETKEYSINSLOT", slot, 1000)
        half, rest = keys[::2], keys[1::2]
        nodes[source].execute_command("MIGRATE", "127.0.0.1", group.ports[target], "", 0, 5000, "KEYS", *half)

        creating = asyncio.ensure_future(
            backend.jobs.create(user, "four", kind=p.COMMAND_DISPATCH, command="c", target_uuid="peer"))
        await asyncio.sleep(0.3)
        assert not creating.done()  # it waits; it has touched nothing on either node

        nodes[source].execute_command("MIGRATE", "127.0.0.1", group.ports[target], "", 0, 5000, "KEYS", *rest)
        for node in nodes:  # the move ends as redis-cli's does: every master learns the slot's new owner
            if node.execute_command("ROLE")[0] == b"master":
                node.execute_command("CLUSTER", "SETSLOT", slot, "NODE", ids[target])
        await creating
        assert (await backend.jobs.usage(user))[0] == 4
        assert sorted(await backend.jobs.in_flight(user, "peer")) == ["four", "one", "three", "two"]
    finally:
        await backend.jobs.close()
        for node in nodes:
            node.close()
