"""Every bound the server enforces, in one place: `Limits` is what docs/limits.md documents (a test
holds them to it) and what `blendbus serve --limit NAME=VALUE` sets."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from . import protocol as p
from .paging import DEFAULT_INLINE_RESULT_MAX_BYTES


@dataclass
class Limits:
    """Every bound the server enforces; all documented in docs/limits.md, each settable with
    `blendbus serve --limit NAME=VALUE`."""

    max_timeout_s: float = 3600.0
    """Cap on a call's `timeout_s` override."""
    max_wait_s: float = 60.0
    """Cap on `blender_get_job(wait_s=...)`."""
    poll_wait_s: float = p.POLL_WAIT_S
    """Longest a peer's poll is held open when nothing is queued."""
    peer_grace_s: float = 5.0
    """A peer with no open poll for this long is gone; its in-flight jobs become `lost`."""
    max_queued_per_peer: int = 1000
    """Back-pressure: beyond this backlog a dispatch gets `busy` instead of an unbounded queue."""
    max_result_bytes: int = 64 * 1024 * 1024
    """The largest result a peer may send (JSON-encoded); the HTTP body limit is derived from it."""
    max_arguments_bytes: int = 8 * 1024 * 1024
    """The largest arguments (JSON-encoded) of one tool call: a script, a command's params."""
    max_calls_per_user: int = 256
    """Dispatches one user may have in flight at once; beyond it a call gets `busy`."""
    max_registration_bytes: int = 256 * 1024
    """The largest peer registration (JSON-encoded): what a peer says of itself is kept in memory."""
    max_peers_per_user: int = 1000
    """Peers one user may have registered at once."""
    task_after_s: float = 1.0
    """A call from a client that speaks MCP tasks becomes a task when it has not finished by then."""
    progress_every_s: float = 10.0
    """While a call waits, it is told the job's state this often (MCP progress), so clients that reset
    their timeout on progress never give up on a live job."""
    max_waits_per_user: int = 64
    """Long waits one user may hold open at once on one replica: `blender_get_job` and `blender_watch_bus`
    with `wait_s`, and 2025-11-25 `tasks/result`. Beyond it a wait is refused (`busy`) at once."""
    max_task_result_wait_s: float = 600.0
    """Longest a 2025-11-25 `tasks/result` waits for its task to end; then it answers that the task is still
    working (call it again, or poll `tasks/get`). It also ends when its client hangs up."""
    max_status_streams_per_user: int = 8
    """Live status-page streams (`/status/api/events`) one user may hold open on one replica (HTTP 429 beyond)."""
    max_subscriptions_per_session: int = 100
    """Resources one session-era session may hold `resources/subscribe` on."""
    max_subscriptions_per_user: int = 1000
    """`resources/subscribe` entries one user's sessions may hold together on one replica."""
    max_sessions_per_user: int = 100
    """Session-era (2025-11-25) MCP sessions one user may hold open; the server-wide cap is the SDK's 10,000."""
    header_timeout_s: float = 10.0
    """Time a client has to send a request's headers; then the connection is closed (HTTP 408)."""
    body_idle_timeout_s: float = 10.0
    """Longest pause within a request body (HTTP 408 after it)."""
    min_body_rate: float = 64 * 1024
    """Bytes per second a request body must average after `body_grace_s`."""
    body_grace_s: float = 10.0
    """How long a request body may start slowly before `min_body_rate` applies."""
    max_connections_per_address: int = 2048
    """Open connections one client address may hold (not a trusted proxy's: `--trusted-proxies`)."""
    max_requests_per_user: int = 2048
    """HTTP requests one user may have in flight at once on one replica (HTTP 429 beyond): long polls,
    waits and streams included. Behind a proxy every user shares its address; this keeps each to a share."""
    max_pending_connections: int = 512
    """Connections still sending their headers (not yet authenticated), over all addresses."""
    max_pending_per_address: int = 64
    """Connections one address may have still sending their headers."""
    inline_result_max_bytes: int | None = DEFAULT_INLINE_RESULT_MAX_BYTES
    """A result whose JSON is larger comes back in pages (paging.py), so every response fits the
    official clients' default message limits; None sends whole results (clients configured for them)."""
    text_result_max_bytes: int | None = None
    """None: a tool result repeats the whole envelope as JSON text beside structuredContent. A size:
    results larger than that are sent once, in structuredContent, and the text names them instead;
    a 64 MiB result then costs the server half the memory to send (docs/performance.md)."""
    oauth_access_token_s: float = 3600.0
    """How long an access token of the built-in authorization server (--oauth builtin) lasts; a revoked
    sign-in keeps working at most this long (its refresh token stops at once)."""
    oauth_refresh_token_s: float = 30 * 86400.0
    """How long a refresh token of the built-in authorization server lasts unused (each use rotates it)."""
    oauth_requests_per_minute: int = 120
    """Requests one address may make a minute to the built-in authorization server's open endpoints."""


def set_limit(limits: Limits, assignment: str) -> None:
    """Apply `NAME=VALUE` (`blendbus serve --limit`) to `limits`, typed as the field is; ValueError naming
    what is wrong. `none` unsets a field that may be unset."""
    name, sep, text = assignment.partition("=")
    fields = {f.name: f for f in dataclasses.fields(Limits)}
    if not sep or name.strip() not in fields:
        raise ValueError(f"--limit takes NAME=VALUE with NAME one of {', '.join(fields)}; got {assignment!r}")
    name, text = name.strip(), text.strip()
    kind = str(fields[name].type)
    if text.lower() == "none" and "None" in kind:
        setattr(limits, name, None)
        return
    try:
        value: float | int = int(text) if kind.startswith("int") else float(text)
    except ValueError:
        raise ValueError(f"--limit {name} takes {'a whole number' if kind.startswith('int') else 'a number'},"
                         f" not {text!r}") from None
    if value < 0:
        raise ValueError(f"--limit {name} cannot be negative")
    setattr(limits, name, value)
