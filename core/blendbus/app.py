"""Running a blendbus server: the ASGI app on uvicorn, optional stdio, optional embedded Blender."""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import signal
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import uvicorn
from mcp.server.stdio import stdio_server
from mcp.server.transport_security import TransportSecuritySettings
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from . import __version__, relay
from .addresses import allowed_hosts, is_loopback, own_origins
from .asgi import (
    BodyLimits,
    PerUserRequests,
    follow_sessions,
    hold_bodies_once,
    space_keepalive_pings,
)
from .auth import BearerAuth, Identity, TokenTable, new_token
from .backends import open_backend
from .backends.backend import Backend
from .connections import ConnectionGuard, ConnectionLimits, listening_socket, raise_open_files_limit
from .dispatch import Hub
from .embedded import EmbeddedBlender
from .limits import Limits
from .locks import claim_state_dir, default_state_dir
from .oauth.resource import (
    BUILTIN,
    ProtectedResource,
    builtin_resource,
    protected_resource,
)
from .plugins import load_plugins
from .server import BlendbusServer
from .server.uploads import upload_route
from .server_card import CARD_PATH, card_routes
from .status import API_PATH as STATUS_API
from .status import status_routes

log = logging.getLogger("blendbus")


@dataclass
class ServeOptions:
    host: str = "127.0.0.1"
    port: int = 8765
    stdio: bool = False
    tokens: Path | None = None
    state_dir: Path = field(default_factory=default_state_dir)
    backend: str = "sqlite"
    """Where jobs and peers live: `sqlite` (the state dir) or a redis:// URL shared by replicas."""
    embedded_blender: bool = False
    embedded_settings: list[str] = field(default_factory=list)
    limits: Limits = field(default_factory=Limits)
    allowed_hosts: list[str] = field(default_factory=list)
    """Host header values accepted besides the defaults (see `allowed_hosts`)."""
    allowed_origins: list[str] = field(default_factory=list)
    """Origin header values accepted; none by default, so no web page can call the server."""
    trusted_proxies: list[str] = field(default_factory=list)
    """Addresses of proxies in front of this server: exempt from the per-address connection caps."""
    tools: str = "all"
    """The tools profile LLM clients get (toolsets.py)."""
    oauth: str | None = None
    """The issuer whose OAuth access tokens are accepted, besides the tokens file (oauth/)."""
    public_url: str | None = None
    """Where clients reach this server, behind any proxy; OAuth tokens are minted for it."""
    oauth_user_claim: str = "sub"
    oauth_audiences: list[str] = field(default_factory=list)
    """Audiences besides URL/mcp that name this server in tokens (an issuer's own name for it)."""
    oauth_client_id: str | None = None
    """This server's client id at the issuer, for introspection (secret: BLENDBUS_OAUTH_CLIENT_SECRET)."""


def build_app(server: BlendbusServer, host: str, tokens: TokenTable | None, *,
              hosts: list[str] | None = None, origins: list[str] | None = None, port: int | None = None,
              oauth: ProtectedResource | None = None) -> Starlette:
    """The streamable-HTTP app at /mcp (bearer auth, Host/Origin checks), /healthz, and the status
    page at / (its API behind the same auth). `port`: where it is served, so its own origins pass.
    `oauth`: OAuth access tokens are accepted too, and the resource metadata is served."""
    space_keepalive_pings()
    answered = allowed_hosts(host, hosts or [])
    security = TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=answered,
        allowed_origins=[*own_origins(answered, port), *(origins or [])],
    )

    async def healthz(request: Request) -> JSONResponse:
        return JSONResponse({"ok": True, "service": relay.SERVICE, "version": __version__,
                             "plugins": len(server.plugins.plugins),
                             "plugin_errors": [p.name for p in server.plugins.errors]})

    lim = server.hub.limits
    bodies = BodyLimits(llm_bytes=lim.max_arguments_bytes + ENVELOPE_SLACK_BYTES,
                        peer_bytes=lim.max_result_bytes + ENVELOPE_SLACK_BYTES,
                        idle_s=lim.body_idle_timeout_s, min_rate=lim.min_body_rate, grace_s=lim.body_grace_s)
    app = server.mcp.streamable_http_app(
        host=host,
        transport_security=security,
        max_request_body_size=bodies.peer_bytes,
        custom_starlette_routes=[Route("/healthz", healthz), *status_routes(server.hub, security, server.waits),
                                 *(oauth.routes() if oauth is not None else ()),
                                 *card_routes(server, tokens, oauth), upload_route(server.hub, security, bodies)],
    )
    hold_bodies_once(server, bodies)
    follow_sessions(server, lim.max_sessions_per_user)
    return BearerAuth(PerUserRequests(app, lim.max_requests_per_user), tokens,  # type: ignore[return-value]
                      paths=("/mcp", STATUS_API), oauth=oauth, open_paths=(CARD_PATH,))



ENVELOPE_SLACK_BYTES = 1024 * 1024
"""Room in a request body for the JSON-RPC envelope around arguments or a result."""


def uvicorn_config(app: Any, limits: Limits, graceful_s: float = 3, trusted_proxies: list[str] | None = None
                   ) -> uvicorn.Config:
    """uvicorn as blendbus runs it: with the connection limits of `limits` (connections.py)."""
    guard = ConnectionGuard(ConnectionLimits(
        header_timeout_s=limits.header_timeout_s, max_per_address=limits.max_connections_per_address,
        max_pending=limits.max_pending_connections, max_pending_per_address=limits.max_pending_per_address,
        trusted_proxies=frozenset(trusted_proxies or ())))
    return uvicorn.Config(app, log_level="warning", lifespan="on", timeout_graceful_shutdown=graceful_s,
                          http=guard.protocol())


class _Uvicorn(uvicorn.Server):
    """uvicorn, telling the server when a shutdown starts (so open long polls and streams end first)."""

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
    if opts.tokens is None and opts.oauth is None and not is_loopback(opts.host):
        raise SystemExit(f"refusing to serve on {opts.host} without --tokens or --oauth: only loopback binds may"
                         " skip auth")
    tokens = TokenTable.load(opts.tokens) if opts.tokens else TokenTable({}) if opts.oauth else None
    try:
        sock = listening_socket(opts.host, opts.port)
    except OSError as exc:
        if not (opts.stdio and exc.errno == errno.EADDRINUSE):
            raise
        await _serve_stdio_elsewhere(opts, str(exc.strerror or exc))
        return
    try:
        await _serve(opts, tokens, sock)
    finally:
        sock.close()


async def _serve_stdio_elsewhere(opts: ServeOptions, why: str) -> None:
    """--stdio with the port taken: the blendbus server there serves the stdio client, or the client is
    told, in every answer, what holds the port (relay.py)."""
    url = relay.holder(opts.host, opts.port)
    if url is not None:
        relay.announce(f"{url} is already served by blendbus: this stdio client uses that server's bus"
                       " (its peers and jobs); no Blender of its own is started")
        await relay.relay(url, os.environ.get("BLENDBUS_TOKEN"))
    else:
        reason = (f"blendbus cannot start: {why}. Another program (not blendbus) listens there; add \"--port\","
                  " \"0\" to this server's args in the host's configuration to take any free port")
        relay.announce(reason)
        await relay.refuse(reason)


async def _serve(opts: ServeOptions, tokens: TokenTable | None, sock: socket.socket) -> None:
    state_dir, held = claim_state_dir(opts.state_dir)
    opts = replace(opts, state_dir=state_dir)
    backend = open_backend(opts.backend, state_dir=opts.state_dir, grace_s=opts.limits.peer_grace_s)
    if backend.start is not None:
        await backend.start()
    recovered = await backend.jobs.recover()
    await backend.jobs.prune()
    plugins = load_plugins()
    for info in plugins.errors:
        print(f"blendbus: plugin {info.name!r} failed to load: {info.error}", file=sys.stderr)
    server = BlendbusServer(plugins, Hub(backend, opts.limits), tools=opts.tools)
    for profile in tokens.profiles() if tokens is not None else ():
        try:
            server.tools.profile(profile, files=False)
        except ValueError as exc:
            raise ValueError(f"tokens file: {exc}") from None
    oauth = oauth_resource(opts, sock.getsockname()[1], backend, tokens)
    embedded_token = None
    if opts.embedded_blender and tokens is not None:
        embedded_token = new_token()
        tokens.add(embedded_token, Identity("local"))
    app = build_app(server, opts.host, tokens, hosts=opts.allowed_hosts, origins=opts.allowed_origins,
                    port=sock.getsockname()[1], oauth=oauth)
    raise_open_files_limit()

    port = sock.getsockname()[1]
    url = f"http://{opts.host if ':' not in opts.host else f'[{opts.host}]'}:{port}/mcp"
    _survive_reraised_signals()
    web = _Uvicorn(uvicorn_config(app, opts.limits, trusted_proxies=opts.trusted_proxies), on_exit=server.shutting_down)
    embedded = (EmbeddedBlender(url, embedded_token, opts.embedded_settings, opts.state_dir, server.hub)
                if opts.embedded_blender else None)

    async def announce() -> None:
        while not web.started:
            await asyncio.sleep(0.01)
        for line in startup_lines(opts, url, backend.name, recovered, tokens is not None, oauth):
            print(line, file=sys.stderr, flush=True)
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
        await backend.jobs.close()
        held.release()


def oauth_resource(opts: ServeOptions, port: int, backend: Backend, people: TokenTable | None
                   ) -> ProtectedResource | None:
    """This server as an OAuth protected resource, when --oauth names an issuer or `builtin`."""
    if opts.oauth is None:
        return None
    public = opts.public_url
    if public is None:
        if not is_loopback(opts.host):
            raise ValueError("--oauth needs --public-url: the https URL clients reach this server at")
        public = f"http://{opts.host if ':' not in opts.host else f'[{opts.host}]'}:{port}"
    if opts.oauth == BUILTIN:
        if opts.tokens is None or people is None or backend.records is None:
            raise ValueError("--oauth builtin signs people in with their personal tokens: pass --tokens FILE"
                             " (blendbus token new USER adds one)")
        return builtin_resource(public, backend.records, people, opts.limits)
    return protected_resource(opts.oauth, public, user_claim=opts.oauth_user_claim, client_id=opts.oauth_client_id,
                              client_secret=os.environ.get("BLENDBUS_OAUTH_CLIENT_SECRET"),
                              audiences=opts.oauth_audiences)


def startup_lines(opts: ServeOptions, url: str, backend: str, recovered: int, tokens: bool,
                  oauth: ProtectedResource | None = None) -> list[str]:
    """What `blendbus serve` says when it is ready: where to connect, where the status page is, where
    the jobs are kept, and who may call it, in words."""
    page = url.removesuffix("/mcp") + "/"
    lines = [f"blendbus serving {url}",
             f"blendbus: status page at {page}" + (" (open it with a token: #token=...)" if tokens else ""),
             "blendbus: jobs are kept in " + (str(opts.state_dir) if backend == "sqlite"
                                              else f"the {backend} backend, shared with its other replicas")]
    if recovered:
        lines.append(f"blendbus: {recovered} jobs were running when this server last stopped: they are marked lost"
                     " (a late reply from their peer is still recorded)")
    lines.append(f"blendbus: Host headers allowed: {', '.join(allowed_hosts(opts.host, opts.allowed_hosts))};"
                 " Origins allowed: this server's own pages"
                 f"{''.join(', ' + o for o in opts.allowed_origins) or ' (no other web page can call this server)'}")
    if oauth is not None:
        lines.append(f"blendbus: OAuth sign-in through {oauth.tokens.issuer.url}; tokens must be minted for"
                     f" {oauth.resource} (resource metadata at {oauth.metadata_url})")
    return lines


async def _serve_stdio(server: BlendbusServer, web: uvicorn.Server) -> None:
    """One LLM client on stdin/stdout (user `local`); when it closes, the whole server stops."""
    async with stdio_server() as (read, write):
        await server.mcp.run(read, write, server.mcp.create_initialization_options())
    web.should_exit = True
