"""What only the Redis backend has to handle: state shared by replicas that die independently."""

from __future__ import annotations

import pytest

from blendbus import protocol as p
from blendbus.backends import open_backend

pytestmark = pytest.mark.anyio


async def test_a_job_whose_replica_died_before_queuing_it_becomes_lost(blendbus_redis: str) -> None:
    backend = open_backend(blendbus_redis, state_dir=None, grace_s=5)
    try:
        await backend.peers.register("u", "peer", "c", "i", {}, max_peers=9)
        for job_id in ("orphan", "waiting"):  # both recorded; only "waiting" reached the peer's queue
            await backend.jobs.create("u", job_id, kind=p.COMMAND_DISPATCH, command="c", target_uuid="peer")
        await backend.peers.push("u", "peer", "waiting", p.command_dispatch("waiting", "c", {}))
        assert await backend.jobs.prune() == 0
        assert (await backend.jobs.get("u", "orphan")).status == p.QUEUED  # not yet: it may be on its way
        backend.jobs.orphan_after_s = 0  # what a minute later looks like
        await backend.jobs.prune()
        orphan = await backend.jobs.get("u", "orphan")
        assert orphan.status == p.LOST and "stopped before queuing it" in orphan.error
        assert (await backend.jobs.get("u", "waiting")).status == p.QUEUED  # queued jobs wait as long as needed
        assert await backend.jobs.in_flight("u", "peer") == ["waiting"]
    finally:
        await backend.jobs.close()


def test_a_replica_without_redis_says_so(tmp_path) -> None:
    import socket
    import subprocess
    import sys

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    run = subprocess.run([sys.executable, "-m", "blendbus", "serve", "--port", "0", "--state-dir", str(tmp_path),
                          "--backend", f"redis://127.0.0.1:{closed}/0"], capture_output=True, text=True, timeout=60)
    assert run.returncode == 2
    assert f"the Redis backend (127.0.0.1:{closed}/0) does not answer" in run.stderr and "--backend" in run.stderr
