"""Redis with Sentinel (`redis+sentinel://`): one master, one replica, three sentinels, all real
(`redis-server`, and `redis-server --sentinel`). The master is killed while calls run: the sentinels
promote the replica, both blendbus replicas follow, no call hangs past its timeout and no job stays open."""

from __future__ import annotations

import asyncio

import pytest

from blendbus import protocol as p
from blendbus.client import connect
from blendbus.testing import PythonPeer, call_envelope, eventually, make_server, serve_http
from blendbus.testing import plugin as testing_plugin
from blendbus.testing.redis import fresh_prefix, sentinel_group, with_prefix

pytestmark = pytest.mark.anyio
CALL_TIMEOUT_S = 8.0


async def test_calls_go_on_through_a_sentinel_failover():
    with sentinel_group() as group:
        url = with_prefix(group.url, fresh_prefix("sentinel"))
        first, second = (make_server([("testing", testing_plugin)], backend=url) for _ in range(2))
        async with serve_http(first) as one, serve_http(second) as two, PythonPeer(lambda: connect(two)), \
                connect(one) as client:
            assert (await call_envelope(client, "blender_test_echo", {"value": "before"}))["status"] == p.COMPLETED

            async def call(i: int) -> dict:  # no call may outlive its timeout by more than the answer's trip
                return await asyncio.wait_for(call_envelope(client, "blender_test_sleep",
                                                            {"seconds": 0.2, "timeout_s": CALL_TIMEOUT_S}),
                                              CALL_TIMEOUT_S + 10)

            running = [asyncio.ensure_future(call(i)) for i in range(6)]
            await asyncio.sleep(0.1)
            old = group.master_address()
            group.kill_master()
            await eventually(lambda: _moved(group, old), "the sentinels promoting the replica", 60)
            ended = await asyncio.gather(*running)
            for env in ended:  # each answered: done, or lost or failed saying why (the backend went away)
                assert env["status"] == p.COMPLETED or (env["status"] in (p.LOST, p.FAILED, p.TIMEOUT) and env["error"]), env

            async def works() -> bool:
                env = await call_envelope(client, "blender_test_echo", {"value": "after", "timeout_s": CALL_TIMEOUT_S})
                return env["status"] == p.COMPLETED

            await eventually(works, "calls through the new master", 60)
            for env in ended:  # each job the failover touched has ended, or was never kept
                if env.get("job_id"):
                    job = await call_envelope(client, "blender_get_job", {"job_id": env["job_id"], "wait_s": 15})
                    assert job["status"] in p.FINAL_STATUSES, job


async def _moved(group, old) -> bool:
    return await asyncio.to_thread(group.master_address) != old
