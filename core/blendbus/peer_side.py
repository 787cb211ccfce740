"""The peer's side of the bus: a Blender peer registers, long-polls for its jobs, replies to them
(progress, log lines, questions, results), says when its scene changed, and is dropped, its jobs
failed, when it stops polling (the liveness reaper).

`dispatch.Hub` is built on it and adds the caller's side; both run everything through the backend's
three interfaces, so any replica's Hub serves any peer.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

from . import protocol as p
from .asked import Asked
from .backends.backend import Backend
from .backends.base import Jobs, Notifier, Peers
from .backends.snapshots import PeerRecord
from .limits import Limits

log = logging.getLogger(__name__)

LOCAL_CREDENTIAL = "local"
"""The credential of callers without a bearer token (stdio, loopback without --tokens)."""

PRUNE_EVERY_S = 60.0
"""How often the reaper applies age-based retention (size caps hold after every write anyway)."""


class PeerSide:
    """What a Blender peer asks of the bus, over the backend a `Hub` holds."""

    backend: Backend
    jobs: Jobs
    peers: Peers
    notifier: Notifier
    asked: Asked
    limits: Limits

    async def register_peer(self, user_id: str, uuid: str, credential: str = LOCAL_CREDENTIAL, *,
                            instance: str | None = None, **info: Any) -> PeerRecord:
        """Add a peer, or refresh one that re-registers (a reconnect: its queue is kept).

        A uuid stays bound to the token (`credential`) and process (`instance`) that registered it
        until that peer unregisters or stops polling: nobody else can take its jobs or answer for it.
        Anything handed out but not acknowledged is handed out again on the next poll."""
        record = await self.peers.register(user_id, uuid, credential, instance,
                                           {k: v for k, v in info.items() if v is not None},
                                           max_peers=self.limits.max_peers_per_user)
        await self.peers.publish(user_id, "register", client_uuid=uuid)
        return record

    async def unregister_peer(self, user_id: str, uuid: str, token: str) -> None:
        await self.peers.authenticate(user_id, uuid, token)
        await self._drop_peer(user_id, uuid, "unregistered")

    async def peer(self, user_id: str, uuid: str, token: str) -> PeerRecord:
        """The registered peer behind (uuid, token), or PeerAuthError."""
        return await self.peers.authenticate(user_id, uuid, token)

    async def note_synced(self, user_id: str, uuid: str, token: str, entry: dict[str, Any]) -> None:
        """The peer fetched a handler package: list it among the peer's handlers."""
        await self.peers.authenticate(user_id, uuid, token)
        await self.peers.note_handler(user_id, uuid, entry)

    async def poll(self, user_id: str, uuid: str, token: str, ack: list[str], wait_s: float) -> list[dict[str, Any]]:
        """Long poll: return at once if anything is queued, else when something is, or after wait_s."""
        wait_s = min(max(wait_s, 0.0), self.limits.poll_wait_s)
        return (await self.backend.take(user_id, uuid, token, ack, wait_s))[0]

    async def job_update(
        self,
        user_id: str,
        uuid: str,
        token: str,
        job_id: str,
        status: str,
        *,
        result: Any = None,
        error: str = "",
        progress: float | None = None,
        message: str | None = None,
        scene: dict[str, Any] | None = None,
        level: str | None = None,
        ask: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """A peer's reply (or progress) for one of its jobs; `scene` is its account of its scene; `level`
        makes a running update's `message` a log line for the job's callers, `ask` a question for the
        person behind them (`job.ask`), carried to them as a note of kind ASK_NOTE."""
        if status not in p.PEER_REPLY_STATUSES:
            raise ValueError(f"status must be one of {sorted(p.PEER_REPLY_STATUSES)}")
        if level is not None and (status != p.RUNNING or level not in p.LOG_LEVELS):
            raise ValueError(f"a log line is a {p.RUNNING} update with {p.LEVEL_FIELD} one of {', '.join(p.LOG_LEVELS)}")
        if ask is not None:
            if status != p.RUNNING or level is not None:
                raise ValueError(f"a question is a {p.RUNNING} update with {p.ASK_FIELD} and no {p.LEVEL_FIELD}")
            question = {**ask, "job_id": job_id}
            level, message = p.ASK_NOTE, json.dumps(question)
            await self.asked.hold(user_id, uuid, token, question)
        problem = p.content_problem(result) if status == p.COMPLETED else None
        if problem is not None:
            status, result, error = p.FAILED, None, f"the peer's result was malformed and was not kept: {problem}"
        replied = await self.backend.reply(user_id, uuid, token, job_id, status, result=result, error=error or "",
                                           progress=progress, message=message, scene=scene, level=level)
        answer: dict[str, Any] = {"accepted": replied.accepted, "status": replied.status}
        if not replied.persisted:
            answer["persisted"] = False
        return answer

    async def scene_changed(self, user_id: str, uuid: str, token: str, objects: list[str], whole: bool) -> None:
        """The peer's scene changed: an event on the user's feed, which change notifications follow."""
        await self.peers.authenticate(user_id, uuid, token, touch=True)
        await self.peers.publish(user_id, p.SCENE_CHANGED, client_uuid=uuid, objects=objects[:p.MAX_CHANGED_NAMES],
                                 all=whole or len(objects) > p.MAX_CHANGED_NAMES)

    # ---- liveness ----------------------------------------------------------------------------
    async def _reap_forever(self) -> None:
        interval = max(0.1, min(1.0, self.limits.peer_grace_s / 5))
        last_prune = time.monotonic()
        while True:
            await asyncio.sleep(interval)
            try:
                await self.reap()
                if time.monotonic() - last_prune > PRUNE_EVERY_S:
                    last_prune = time.monotonic()
                    await self.jobs.prune()
            except Exception:  # noqa: BLE001 - a backend hiccup must not end liveness checks for good
                log.exception("liveness check failed; trying again")

    async def reap(self) -> list[str]:
        """Drop peers that stopped polling; fail their in-flight jobs now instead of at their timeout."""
        gone = []
        for user_id, uuid in await self.peers.expired():
            await self._drop_peer(user_id, uuid, f"stopped polling for over {self.limits.peer_grace_s:g}s")
            gone.append(uuid)
        return gone

    async def _drop_peer(self, user_id: str, uuid: str, why: str) -> None:
        """End the peer's jobs as lost, then unregister it, which releases a reaper's claim on it
        (`Peers.expired`): a replica that dies or loses its store in between leaves the claim to lapse,
        and the next reaper finishes. A job dispatched to it meanwhile ends after it is unregistered."""
        error = f"peer {uuid} {why} before replying; a late reply is still recorded"
        await self._fail_in_flight(user_id, uuid, error)
        await self.peers.unregister(user_id, uuid)
        await self._fail_in_flight(user_id, uuid, error)
        log.info("peer %s on bus %s left: %s", uuid, user_id, why)
        await self.peers.publish(user_id, "unregister", client_uuid=uuid, reason=why)

    async def _fail_in_flight(self, user_id: str, uuid: str, error: str) -> None:
        for job_id in await self.jobs.in_flight(user_id, uuid):
            await self._fail(user_id, job_id, p.LOST, error)

    async def _fail(self, user_id: str, job_id: str, status: str, error: str) -> None:
        """Move a job to a failure status and answer whoever waits for it."""
        if await self.jobs.advance(user_id, job_id, status, error=error):
            job = await self.jobs.get(user_id, job_id)
            if job is not None:
                await self.notifier.deliver(user_id, job_id, job.envelope())
            await self.peers.publish(user_id, p.JOB_UPDATE, job_id=job_id, status=status)
