"""`resources/subscribe` is capped per session and per user, and goes with its session (security round 3, #5).

The attack: there was no cap, and entries outlived their session: 900 URIs (51 MB) stayed after every
session was deleted.
"""

from __future__ import annotations

import httpx2
import pytest

from blendbus.dispatch import Limits
from blendbus.testing import make_server, serve_http
from blendbus.testing import plugin as testing_plugin
from blendbus.testing.raw import SessionClient

pytestmark = pytest.mark.anyio
LONG = "n" * 1500


def _uri(n: int) -> str:
    return f"blender://scene/object/{LONG}{n}"


async def test_subscriptions_are_capped_and_end_with_their_session(tmp_path):
    server = make_server([("testing", testing_plugin)], state_dir=tmp_path / "state",
                         limits=Limits(max_subscriptions_per_session=5, max_subscriptions_per_user=8))
    async with serve_http(server, tokens={"a": "alice", "b": "bob"}) as url, httpx2.AsyncClient(timeout=30) as http:
        first = await SessionClient(http, url, "a", capabilities={}).open()
        assert first.initialized["capabilities"]["resources"]["subscribe"] is True
        for n in range(5):
            assert "result" in await first("resources/subscribe", {"uri": _uri(n)})
        assert "result" in await first("resources/subscribe", {"uri": _uri(0)})  # the same one again costs nothing
        refused = await first("resources/subscribe", {"uri": _uri(5)})
        assert refused["error"]["code"] == -32602 and "this session already subscribes to 5" in refused["error"]["message"]
        second = await SessionClient(http, url, "a", capabilities={}).open()
        for n in range(3):
            assert "result" in await second("resources/subscribe", {"uri": _uri(10 + n)})
        refused = await second("resources/subscribe", {"uri": _uri(20)})
        assert refused["error"]["code"] == -32602 and "8 subscriptions" in refused["error"]["message"]
        too_long = await second("resources/subscribe", {"uri": "blender://scene/object/" + "x" * 3000})
        assert too_long["error"]["code"] == -32602 and "at most 2048 bytes" in too_long["error"]["message"]
        bob = await SessionClient(http, url, "b", capabilities={}).open()
        assert "result" in await bob("resources/subscribe", {"uri": _uri(0)})  # alice's cap is hers alone
        assert server.changes.subscriptions("alice") == 8
        assert "result" in await first("resources/unsubscribe", {"uri": _uri(1)})
        assert server.changes.subscriptions("alice") == 7
        assert await first.close() == 200 and await second.close() == 200
        assert server.changes.subscriptions("alice") == 0  # nothing of alice's outlives her sessions
        assert server.changes.subscriptions("bob") == 1
        assert await bob.close() == 200
        assert server.changes.subscriptions("bob") == 0
