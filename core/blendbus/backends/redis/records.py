"""`Records` in Redis: one key per record under `<prefix>:oauth:`, read and written by single-key
commands (no script), so they live in any slot of a cluster; `GETDEL` takes a code or refresh
token exactly once across replicas."""

from __future__ import annotations

import json
from typing import Any

from .connection import Connection, store_errors


class RedisRecords:
    def __init__(self, link: Connection) -> None:
        self.link = link

    def _key(self, kind: str, key: str) -> str:
        return self.link.keys.record(kind, key)

    @store_errors
    async def put(self, kind: str, key: str, value: dict[str, Any], ttl_s: float | None = None) -> None:
        px = max(1, int(ttl_s * 1000)) if ttl_s is not None else None
        await self.link.redis.set(self._key(kind, key), json.dumps(value), px=px)

    @store_errors
    async def get(self, kind: str, key: str) -> dict[str, Any] | None:
        raw = await self.link.redis.get(self._key(kind, key))
        return json.loads(raw) if raw is not None else None

    @store_errors
    async def take(self, kind: str, key: str) -> dict[str, Any] | None:
        raw = await self.link.redis.getdel(self._key(kind, key))
        return json.loads(raw) if raw is not None else None

    @store_errors
    async def put_first(self, kind: str, key: str, value: dict[str, Any]) -> dict[str, Any]:
        held = await self.link.redis.set(self._key(kind, key), json.dumps(value), nx=True, get=True)
        return json.loads(held) if held is not None else value
