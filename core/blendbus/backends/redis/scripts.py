"""The backend's Lua scripts (`lua/*.lua`), each run atomically in Redis in one round trip.

Every script of one user starts with `lua/library.lua`, the functions they share; each file's
header names its KEYS and ARGV. The first argument of a user's script is that user's key base.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Callable
from functools import cache
from importlib.resources import files
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import ClusterDownError, ClusterError, NoScriptError, TryAgainError

from ... import protocol as p

GLOBAL = frozenset({"expired"})
"""Scripts on keys shared by all users: they do without the per-user library."""


SHARED_NAMES = {"QUEUED": p.QUEUED, "RUNNING": p.RUNNING, "LOST": p.LOST, "DISPATCHED": p.DISPATCHED,
                "JOB_UPDATE": p.JOB_UPDATE}
"""Names the scripts spell as Python does: declared in Lua from their one definition."""

SLOT_MOVE_WAIT_S = 10.0
"""How long a script waits for its user's slot to finish moving between cluster nodes (library.lua)
before the call fails; one slot's keys move in milliseconds."""


@cache
def source(name: str) -> str:
    """The Lua source of script `name`, with the shared names and library in front unless it is `GLOBAL`."""
    lua = files(__package__) / "lua"
    body = (lua / f"{name}.lua").read_text()
    if name in GLOBAL:
        return body
    names = "".join(f"local {lua_name} = {json.dumps(value)}\n" for lua_name, value in SHARED_NAMES.items())
    return names + (lua / "library.lua").read_text() + "\n" + body


@cache
def sha(name: str) -> str:
    return hashlib.sha1(source(name).encode()).hexdigest()


async def run(client: aioredis.Redis, name: str, keys: list[str], args: list[Any],
              also: Callable[[Any], None] | None = None) -> Any:
    """Run script `name` and return its answer. `also(pipeline)` queues plain commands to send in the
    same round trip (after the script; not atomic with it), such as the keys shared by all users,
    which a script must not touch. A Redis that forgot the script (restarted) is taught it again, and
    a script that found its slot moving (TRYAGAIN: it touched nothing) runs again once it has moved."""
    deadline = time.monotonic() + SLOT_MOVE_WAIT_S
    pause = 0.01
    while True:
        try:
            return await _taught(client, name, keys, args, also)
        except (TryAgainError, ClusterError) as exc:  # redis-py's cluster client retries TRYAGAIN a few
            # times, then says its TTL ran out (a bare ClusterError): either way the script did not run
            if isinstance(exc, ClusterDownError) or time.monotonic() + pause > deadline:
                raise
            await asyncio.sleep(pause)
            pause = min(pause * 2, 0.2)


async def _taught(client: aioredis.Redis, name: str, keys: list[str], args: list[Any],
                  also: Callable[[Any], None] | None) -> Any:
    """`_run`, teaching the script first to a Redis that forgot it (restarted, or flushed)."""
    try:
        return await _run(client, name, keys, args, also)
    except NoScriptError:
        await client.script_load(source(name))
        return await _run(client, name, keys, args, also)


async def _run(client: aioredis.Redis, name: str, keys: list[str], args: list[Any],
               also: Callable[[Any], None] | None) -> Any:
    if also is None:
        return await client.evalsha(sha(name), len(keys), *keys, *args)
    async with client.pipeline(transaction=False) as pipe:
        pipe.evalsha(sha(name), len(keys), *keys, *args)
        also(pipe)
        answers = await pipe.execute(raise_on_error=False)
    for answer in answers:
        if isinstance(answer, Exception):
            raise answer
    return answers[0]
