"""Behind a proxy every user shares one client address; per-user limits hold there too (security round 3).

The question the review left open: behind nginx, can one user take every connection slot, through
streams, long polls or listens, and lock the others out? The per-address caps cannot tell users apart
there. Each user's requests in flight are capped (`max_requests_per_user`), the proxy's address is
exempt from the per-address caps (`--trusted-proxies`), and docs/deploy/nginx.conf caps each token.
"""

from __future__ import annotations

import asyncio
import json

import httpx2
import pytest

from blendbus.testing.raw import ModernClient
from blendbus.testing.replicas import nginx_in_front, start_replica

pytestmark = pytest.mark.anyio


async def test_one_user_cannot_take_every_connection_behind_nginx(blendbus_redis, tmp_path):
    tokens = tmp_path / "tokens.json"
    tokens.write_text(json.dumps({"tok-alice": "alice", "tok-bob": "bob"}))
    replicas = [start_replica(blendbus_redis, tmp_path / f"r{n}", "--tokens", str(tokens),
                              "--trusted-proxies", "127.0.0.1", "--limit", "max_requests_per_user=10",
                              "--limit", "max_connections_per_address=12", "--limit", "max_waits_per_user=100")
                for n in range(2)]
    try:
        with nginx_in_front(replicas, tmp_path) as url:
            async with httpx2.AsyncClient(timeout=60, limits=httpx2.Limits(max_connections=200)) as http:
                alice = ModernClient(http, url, "tok-alice", tasks=False)
                bob = ModernClient(http, url, "tok-bob", tasks=False)
                # Alice holds long waits open, 30 at once: more than her share, and more than an address may.
                waits = [asyncio.ensure_future(alice.call("blender_watch_bus", {"wait_s": 8})) for _ in range(30)]
                done, _ = await asyncio.wait(waits, timeout=3)
                refused = [w for w in done if w.exception() is not None]
                assert len(done) == len(refused) >= 20  # refused at once: the rest are held open
                assert all(w.exception().response.status_code == 429 for w in refused)
                answer = await bob.call("blender_list_clients", {})  # bob is served while alice waits
                assert answer["structuredContent"] == {"clients": []}
                held = await asyncio.gather(*[w for w in waits if w not in done])
                assert len(held) <= 10 and all(h["structuredContent"]["events"] == [] for h in held)
    finally:
        for replica in replicas:
            replica.stop()
