"""Running a blendbus server: the ASGI app on uvicorn, optional stdio, optional embedded Blender."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import signal
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import platformdirs
import uvicorn
from mcp.server.stdio import stdio_server
from mcp.server.transport_security import TransportSecuritySettings
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from .asgi import hold_bodies_once, space_keepalive_pings
from .auth import BearerAuth, Identity, TokenTable, new_token
from .dispatch import Hub, Limits
from .embedded import EmbeddedBlender
from .jobs import JobStore
from .plugins import load_plugins
from .server import BlendbusServer

log = logging.getLogger("blendbus")


def default_state_dir() -> Path:
    return Path(os.environ.get("BLENDBUS_STATE_DIR") or platformdirs.user_state_dir("blendbus"))


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass
class ServeOptions:
    host: str = "127.0.0.1"
    port: int = 8765
    stdio: bool = False
    tokens: Path | None = None
    state_dir: Path = field(default_factory=default_state_dir)
    embedded_blender: bool = False
    embedded_settings: list[str] = field(default_factory=list)
    limits: Limits = field(default_factory=Limits)


def build_app(server: BlendbusServer, host: str, tokens: TokenTable | None) -> Starlette:
    """The streamable-HTTP app at /mcp (bearer auth, Host/Origin checks) plus /healthz."""
    space_keepalive_pings()
    allowed = {host, "127.0.0.1", "localhost", "[::1]"}
    security = TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=[f"{h}:*" for h in allowed],
        allowed_origins=[f"{scheme}://{h}:*" for h in allowed for scheme in ("http", "https")],
    )

    async def healthz(request: Request) -> JSONResponse:
        return JSONResponse({"ok": True, "plugins": len(server.plugins.plugins),
                             "plugin_errors": [p.name for p in server.plugins.errors]})

    # A peer posts results up to the result cap inside one JSON-RPC request.
    body_limit = server.hub.limits.max_result_bytes + 1024 * 1024
    app = server.mcp.streamable_http_app(
        host=host,
        transport_security=security,
        max_request_body_size=body_limit,
        custom_starlette_routes=[Route("/healthz", healthz)],
    )
    hold_bodies_once(server, body_limit)
    return BearerAuth(app, tokens)  # type: ignore[return-value]


class _Uvicorn(uvicorn.Server):
    """uvicorn, telling the hub when a shutdown starts (so open long polls are answered first)."""

    def __init__(self, config: uvicorn.Config, on_exit: Callable[[], None]) -> None:
        super().__init__(config)
        self._on_exit = on_exit

    def handle_exit(self, sig: int, frame: Any) -> None:
        super().handle_exit(sig, frame)
        asyncio.get_event_loop().call_soon_threadsafe(self._on_exit)


def _survive_reraised_signals() -> None:
    """uvicorn handles SIGINT/SIGTERM while it serves, then restores the previous handlers and raises
    the signal again. With the default handlers that kills the process before our cleanup (stopping
    the embedded Blender) runs; with these no-op handlers the re-raise is harmless."""
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda signum, frame: None)


async def serve(opts: ServeOptions) -> None:
    if opts.tokens is None and not is_loopback(opts.host):
        raise SystemExit(f"refusing to serve on {opts.host} without --tokens: only loopback binds may skip auth")
    tokens = TokenTable.load(opts.tokens) if opts.tokens else None
    store = JobStore(opts.state_dir / "jobs.sqlite3")
    recovered = store.recover()
    pruned = store.prune()
    plugins = load_plugins()
    for info in plugins.errors:
        print(f"blendbus: plugin {info.name!r} failed to load: {info.error}", file=sys.stderr)
    server = BlendbusServer(plugins, Hub(store, opts.limits))
    embedded_token = None
    if opts.embedded_blender and tokens is not None:
        embedded_token = new_token()
        tokens.add(embedded_token, Identity("local"))
    app = build_app(server, opts.host, tokens)

    sock = socket.socket(socket.AF_INET6 if ":" in opts.host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Accepted connections inherit this. Without it the SDK's JSON responses (headers and body
    # written separately) meet Nagle plus delayed ACK: 40 ms added to every 2026-07-28-era call.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((opts.host, opts.port))
    port = sock.getsockname()[1]
    url = f"http://{opts.host if ':' not in opts.host else f'[{opts.host}]'}:{port}/mcp"
    _survive_reraised_signals()
    config = uvicorn.Config(app, log_level="warning", lifespan="on", timeout_graceful_shutdown=3)
    web = _Uvicorn(config, on_exit=server.hub.release_polls)
    embedded = EmbeddedBlender(url, embedded_token, opts.embedded_settings, opts.state_dir) if opts.embedded_blender else None

    async def announce() -> None:
        while not web.started:
            await asyncio.sleep(0.01)
        print(f"blendbus serving {url} (state {opts.state_dir}; {recovered} in-flight jobs marked lost after restart,"
              f" {pruned} pruned)", file=sys.stderr, flush=True)
        if embedded is not None:
            await embedded.run()

    # The server runs until uvicorn stops (signal) or, with --stdio, until the stdio client leaves.
    essential = [asyncio.ensure_future(web.serve(sockets=[sock]))]
    if opts.stdio:
        essential.append(asyncio.ensure_future(_serve_stdio(server, web)))
    helper = asyncio.ensure_future(announce())
    try:
        done, _ = await asyncio.wait(essential, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            task.result()
    finally:
        web.should_exit = True
        if embedded is not None:
            await embedded.stop()
        helper.cancel()
        for task in essential[1:]:
            task.cancel()
        await asyncio.gather(helper, *essential, return_exceptions=True)
        await server.hub.stop()
        store.close()


async def _serve_stdio(server: BlendbusServer, web: uvicorn.Server) -> None:
    """One LLM client on stdin/stdout (user `local`); when it closes, the whole server stops."""
    async with stdio_server() as (read, write):
        await server.mcp.run(read, write, server.mcp.create_initialization_options())
    web.should_exit = True
