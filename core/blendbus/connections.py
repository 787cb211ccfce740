"""Connection-level limits, below HTTP: how many connections an address may hold, and how long a
request's headers may take; and the listening socket and open-files limit they rest on.

uvicorn closes idle keep-alive connections but gives a client that connects and then sends its
headers slowly (or never) all the time it wants: 1,100 such connections used up the server's file
descriptors. Here every connection must finish each request's headers within `header_timeout_s`;
an address holds at most `max_per_address` connections, of which at most `max_pending_per_address`
may still be sending headers (at most `max_pending` over all addresses). Beyond that a new
connection is closed at once. Authentication happens right after the headers, so "pending" is
exactly "not yet authenticated". Request bodies are bounded in asgi.py.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import resource
import socket
from collections import Counter
from dataclasses import dataclass

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ConnectionLimits:
    header_timeout_s: float = 10.0
    """Time allowed for a request's headers, from the connection (or the request's first byte) on."""
    max_per_address: int = 2048
    """Open connections one client address may hold (each idle peer holds one or two)."""
    max_pending: int = 512
    """Connections, over all addresses, that may be sending headers at once."""
    max_pending_per_address: int = 64
    """Connections one address may have sending headers at once."""
    trusted_proxies: frozenset[str] = frozenset()
    """Addresses of proxies in front of the server (nginx): their connections carry every user's requests,
    so the per-address caps do not apply to them; per-user caps do (asgi.py)."""


class ConnectionGuard:
    """Counts connections by client address and admits or refuses new ones."""

    def __init__(self, limits: ConnectionLimits) -> None:
        self.limits = limits
        self.open: Counter[str] = Counter()
        self.pending: Counter[str] = Counter()
        self.refused = 0

    def admit(self, address: str) -> bool:
        lim = self.limits
        per_address = address not in lim.trusted_proxies
        if ((per_address and (self.open[address] >= lim.max_per_address
                              or self.pending[address] >= lim.max_pending_per_address))
                or self.pending.total() >= lim.max_pending):
            self.refused += 1
            if self.refused in (1, 10, 100) or self.refused % 1000 == 0:
                log.warning("refused %d connections so far (now from %s): connection limits reached",
                            self.refused, address)
            return False
        self.open[address] += 1
        return True

    def release(self, address: str) -> None:
        self.open[address] -= 1
        if self.open[address] <= 0:
            del self.open[address]

    def waiting(self, address: str, delta: int) -> None:
        self.pending[address] += delta
        if self.pending[address] <= 0:
            del self.pending[address]

    def protocol(self) -> type[HttpToolsProtocol]:
        """The uvicorn `http` protocol class that applies these limits."""
        return type("GuardedHttpToolsProtocol", (GuardedHttpToolsProtocol,), {"guard": self})


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, with a header deadline and per-address admission."""

    guard: ConnectionGuard

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._address = self.client[0] if self.client else ""
        self._header_timer: asyncio.TimerHandle | None = None
        self._admitted = self.guard.admit(self._address)
        if not self._admitted:
            transport.close()
            return
        self._await_headers()

    def _await_headers(self) -> None:
        if self._header_timer is None:
            self.guard.waiting(self._address, +1)
            self._header_timer = self.loop.call_later(self.guard.limits.header_timeout_s, self._headers_too_slow)

    def _headers_done(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None
            self.guard.waiting(self._address, -1)

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        self.guard.waiting(self._address, -1)
        if not self.transport.is_closing():
            self.transport.write(b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
            self.transport.close()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._admitted:
            self._await_headers()  # the next request on a kept-alive connection

    def on_headers_complete(self) -> None:
        self._headers_done()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        if getattr(self, "_admitted", False):
            self._headers_done()
            self.guard.release(self._address)
        super().connection_lost(exc)


def listening_socket(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Accepted connections inherit this. Without it the SDK's JSON responses (headers and body
    # written separately) meet Nagle plus delayed ACK: 40 ms added to every 2026-07-28-era call.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise OSError(exc.errno, f"port {port} on {host} is already in use (another blendbus serve?); choose"
                          " another with --port N, or --port 0 to take any free port (printed at start)") from None
        raise
    return sock


def raise_open_files_limit() -> None:
    """Allow as many open connections as the system lets this process have: the connection limits
    (connections.py), not the default soft limit of 1,024 descriptors, should decide who waits."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard if hard != resource.RLIM_INFINITY else 65536, hard))
