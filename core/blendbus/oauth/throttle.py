"""A pace for the sign-in endpoints, which answer anyone: without a token to count by, each client
address may make at most so many requests a minute (HTTP 429 beyond), so nobody can fill the store
with registrations and sign-ins in progress, or guess at codes and refresh tokens at speed."""

from __future__ import annotations

import json
import math
import time
from collections import deque
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

MAX_ADDRESSES = 100_000
"""Addresses remembered at once; beyond, those quiet for a minute are forgotten first."""


class Throttle:
    """Requests per address over the last minute, shared by every endpoint it guards."""

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self.seen: dict[str, deque[float]] = {}

    def guard(self, app: ASGIApp) -> ASGIApp:
        return _Guarded(app, self)

    def admit(self, address: str, now: float) -> float:
        """0 if a request from `address` may go ahead (and counts it), else the seconds to wait."""
        times = self.seen.setdefault(address, deque())
        while times and times[0] <= now - 60:
            times.popleft()
        if len(times) >= self.per_minute:
            return times[0] + 60 - now
        times.append(now)
        if len(self.seen) > MAX_ADDRESSES:
            self.seen = {a: t for a, t in self.seen.items() if t and t[-1] > now - 60}
        return 0.0


class _Guarded:
    def __init__(self, app: ASGIApp, throttle: Throttle) -> None:
        self.app, self.throttle = app, throttle

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        client: Any = scope.get("client") or ("unknown", 0)
        wait = self.throttle.admit(str(client[0]), time.monotonic()) if scope["type"] == "http" else 0.0
        if not wait:
            await self.app(scope, receive, send)
            return
        body = json.dumps({"error": "slow_down", "error_description": f"more than {self.throttle.per_minute} sign-in"
                           " requests a minute from this address; retry later"}).encode()
        await send({"type": "http.response.start", "status": 429, "headers": [
            (b"content-type", b"application/json"), (b"retry-after", str(math.ceil(wait)).encode())]})
        await send({"type": "http.response.body", "body": body})
