"""`Records` in SQLite, beside the job store: the built-in authorization server's clients, codes and
refresh tokens survive a restart of the one server that uses the state dir."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any


class SqliteRecords:
    """`Records` in a table of their own; every call is one quick local statement, run on the loop."""

    def __init__(self, path: Path | str) -> None:
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS records (kind TEXT NOT NULL, key TEXT NOT NULL,"
                         " value TEXT NOT NULL, expires REAL, PRIMARY KEY (kind, key))")

    def _live(self, kind: str, key: str) -> dict[str, Any] | None:
        row = self._db.execute("SELECT value, expires FROM records WHERE kind = ? AND key = ?", (kind, key)).fetchone()
        if row is None or (row[1] is not None and row[1] < time.time()):
            return None
        value: dict[str, Any] = json.loads(row[0])
        return value

    async def put(self, kind: str, key: str, value: dict[str, Any], ttl_s: float | None = None) -> None:
        expires = time.time() + ttl_s if ttl_s is not None else None
        self._db.execute("DELETE FROM records WHERE expires IS NOT NULL AND expires < ?", (time.time(),))
        self._db.execute("INSERT OR REPLACE INTO records VALUES (?, ?, ?, ?)", (kind, key, json.dumps(value), expires))

    async def get(self, kind: str, key: str) -> dict[str, Any] | None:
        return self._live(kind, key)

    async def take(self, kind: str, key: str) -> dict[str, Any] | None:
        value = self._live(kind, key)  # one thread, no await between: nothing interleaves
        self._db.execute("DELETE FROM records WHERE kind = ? AND key = ?", (kind, key))
        return value

    async def put_first(self, kind: str, key: str, value: dict[str, Any]) -> dict[str, Any]:
        held = self._live(kind, key)
        if held is None:
            await self.put(kind, key, value)
            return value
        return held

    def close(self) -> None:
        self._db.close()
