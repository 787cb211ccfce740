"""What the backends hand back: a job, a peer, a route, an event on a user's bus feed.

Each is a snapshot, read at one moment: nothing outside a backend changes a peer or a job in place.
Routing (`route`) is here too, so every backend resolves a target the same way.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..paging import JSON, TEXT
from ..protocol import AMBIGUOUS_TARGET, NO_CLIENT, UNKNOWN_TARGET, envelope

UNSET: Any = object()
"""`result` not given (a status change that keeps the stored result)."""


@dataclass(frozen=True)
class Job:
    user_id: str
    job_id: str
    kind: str
    command: str
    target_uuid: str | None
    status: str
    result_data: str | bytes | None
    """The result text as stored (paging.result_text, in `result_format`): None when it was not read, or
    there is none. The stores keep results this way so that a page is read without decoding the rest."""
    error: str
    progress: float | None
    message: str | None
    created: float
    updated: float
    result_format: str = JSON
    result_bytes: int | None = None
    """How long the stored result text is, in UTF-8 bytes (None: no result)."""
    scene: dict[str, Any] | None = None
    """The peer's account of its scene with its reply (protocol.SCENE_FIELD): `{revision, changes?}`."""

    @property
    def result(self) -> Any:
        if self.result_data is None:
            return None
        if self.result_format == TEXT:
            return self.result_data.decode() if isinstance(self.result_data, bytes) else self.result_data
        return json.loads(self.result_data)

    def envelope(self, result: Any = UNSET) -> dict[str, Any]:
        """The job as a tool result. Pass `result` when it is at hand already decoded: a large result
        is then not decoded a second time from its stored JSON."""
        env = envelope(
            self.status,
            command=self.command,
            target_uuid=self.target_uuid,
            job_id=self.job_id,
            result=self.result if result is UNSET else result,
            error=self.error,
        )
        if self.progress is not None:
            env["progress"] = {"fraction": self.progress, "message": self.message or ""}
        if self.scene is not None:
            env.update((k, self.scene[k]) for k in ("revision", "changes") if k in self.scene)
        return env


@dataclass(frozen=True)
class PeerRecord:
    """A Blender peer as the registry knows it, at the moment it was read."""

    uuid: str
    user_id: str
    token: str
    credential: str
    """Which bearer token registered this peer (its digest); only that token may re-register the uuid."""
    instance: str | None
    """Random per peer process: only the same process may re-register the uuid while the peer lives."""
    info: dict[str, Any] = field(default_factory=dict)
    """What the peer said of itself: client_type, is_persistent, capabilities, blender_version, handlers, gates."""
    registered_at: float = 0.0
    last_seen: float = 0.0
    """Wall-clock time of the peer's last poll or update (every replica agrees on it)."""
    polling: bool = False
    queued: int = 0
    """Payloads waiting for the peer's next poll."""

    def describe(self, running: int) -> dict[str, Any]:
        """The peer as `blender_list_clients` shows it; `running`: its jobs handed out and not finished."""
        return {
            "client_uuid": self.uuid,
            "client_type": self.info.get("client_type", "blender"),
            "is_persistent": self.info.get("is_persistent", False),
            "capabilities": self.info.get("capabilities", {}),
            "blender_version": self.info.get("blender_version"),
            "handlers": self.info.get("handlers", []),
            "gates": self.info.get("gates", {}),
            "registered_at": self.registered_at,
            "last_seen_s_ago": 0.0 if self.polling else round(max(0.0, time.time() - self.last_seen), 3),
            "polling": self.polling,
            "queued": self.queued,
            "running": running,
        }


@dataclass(frozen=True)
class Route:
    """Where a dispatch goes: `uuid` and its backlog, or a status (no_client, ambiguous_target,
    unknown_target) with an error and the peers there are."""

    uuid: str | None
    status: str | None = None
    error: str = ""
    candidates: tuple[str, ...] = ()
    backlog: int = 0


def route(peers: list[str], target_uuid: str | None, backlog: Callable[[str], int]) -> Route:
    """Target resolution, the same for every backend: `peers` are the user's peer uuids, `backlog(uuid)`
    the chosen one's queue length."""
    if target_uuid:
        if target_uuid not in peers:
            known = ", ".join(sorted(peers)) or "none"
            return Route(None, UNKNOWN_TARGET, f"no peer {target_uuid!r} on this bus (connected: {known})")
        return Route(target_uuid, backlog=backlog(target_uuid))
    if not peers:
        return Route(None, NO_CLIENT, "no Blender peer is connected; start one with `blendbus peer --server URL`")
    if len(peers) > 1:
        names = sorted(peers)
        return Route(None, AMBIGUOUS_TARGET, f"{len(names)} peers are connected ({', '.join(names)}); pass target_uuid",
                     candidates=tuple(names))
    return Route(peers[0], backlog=backlog(peers[0]))


@dataclass(frozen=True)
class BusEvent:
    seq: int
    kind: str
    data: dict[str, Any]
