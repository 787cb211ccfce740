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
                assert [env["status"] for env in answers] == [p.COMPLETED] * len(answers), answers
                assert [env["result"]["echo"] for env in answers] == list(range(len(answers)))
                assert await first.hub.jobs.in_flight(users[u], f"p{u}") == []
                fetched = await first.hub.get_job(users[u], answers[0]["job_id"])
                assert fetched["status"] == p.COMPLETED  # kept, wherever its slot went
        finally:
            for peer in peers:
                await peer.kill()
    assert not group.slots()[source]  # every slot of it moved, with the keys of half the users
