"""A dispatch on Redis in as few round trips as it can take: one to enqueue (route, record, queue,
announce, count the call), one per poll, one for the reply (store, announce, notify, uncount).
The generic composition in `Backend` would take a dozen."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from ...protocol import BUSY, RUNNING
from ..backend import Backend, Enqueued, Replied, compact, running_on, unstored
from ..base import JobStoreError, OverQuota, PeerAuthError, others_job, unknown_job
from .connection import Connection, store_errors
from .jobs import RedisJobs, lower_than, scene_text
from .notifier import CALL_LEASE_S, RedisNotifier
from .peers import EVENTS_KEPT, RedisPeers, pairs


@dataclass
class RedisBackend(Backend):
    """`Backend` whose composite operations are each one script."""

    jobs: RedisJobs
    peers: RedisPeers
    notifier: RedisNotifier

    @property
    def link(self) -> Connection:
        return self.jobs.link

    @store_errors
    async def enqueue(self, user_id: str, payload: dict[str, Any], *, command: str, target_uuid: str | None,
                      max_calls: int, max_queued: int, counted: bool) -> Enqueued:
        link, keys, job_id = self.link, self.jobs.keys, payload["job_id"]
        await link.ready()
        now = time.time()
        text = compact(payload)
        answer = await link.run("enqueue", [keys.peers(user_id)], [
            keys.user(user_id), user_id, job_id, target_uuid or "", payload["message_type"], command, text, len(text),
            now, max_calls if counted else 0, now + CALL_LEASE_S, max_queued, self.jobs.overhead(user_id),
            self.jobs.max_jobs_per_user, self.jobs.max_bytes_per_user, link.replica, keys.channel, EVENTS_KEPT,
        ], also=self.jobs.noted_user(user_id))
        match answer[0]:
            case b"ok":
                uuid = answer[1].decode()
                if answer[2] == 1:
                    self.peers.wake(user_id, uuid)
                if counted:
                    self.notifier.counting(user_id, job_id)
                return Enqueued(uuid)
            case b"calls":
                return Enqueued.too_many_calls(max_calls)
            case b"route":
                return Enqueued.refused(self.peers.route(answer, target_uuid))
            case b"backlog":
                return Enqueued.backlog(answer[1].decode(), int(answer[2]))
        refusal = self.jobs.refused(answer, job_id)
        if isinstance(refusal, OverQuota):
            return Enqueued(None, BUSY, str(refusal))
        raise refusal or JobStoreError(f"the enqueue script answered {answer!r}")

    async def take(self, user_id: str, uuid: str, token: str, ack: list[str],
                   wait_s: float) -> tuple[list[dict[str, Any]], list[str]]:
        message = running_on(uuid)
        payloads, fresh = await self.peers.take(user_id, uuid, token, ack, wait_s, running=message)
        for job_id in fresh:
            self.notifier.progress_here(user_id, job_id, None, message)
        return payloads, fresh

    @store_errors
    async def _reply(self, user_id: str, uuid: str, token: str, job_id: str, status: str, result: Any, error: str,
                     progress: float | None, message: str | None, scene: dict[str, Any] | None,
                     level: str | None) -> list[Any]:
        link, keys, jobs = self.link, self.jobs.keys, self.jobs
        how = await jobs.result_args(user_id, job_id, result) if status != RUNNING else ["0", "", ""]
        now = time.time()
        return await link.run("reply", [keys.job(user_id, job_id)], [
            keys.user(user_id), user_id, uuid, token, job_id, status, now, *how, error,
            repr(progress) if progress is not None else "", int(message is not None), message or "",
            jobs.max_jobs_per_user, jobs.max_bytes_per_user, link.replica, keys.channel, EVENTS_KEPT,
            scene_text(scene), level or "", *lower_than(status)], also=self.peers.alive_until(user_id, uuid, now + link.grace_s))

    async def reply(self, user_id: str, uuid: str, token: str, job_id: str, status: str, *, result: Any = None,
                    error: str = "", progress: float | None = None, message: str | None = None,
                    scene: dict[str, Any] | None = None, level: str | None = None) -> Replied:
        ending = status != RUNNING
        try:
            answer = await self._reply(user_id, uuid, token, job_id, status, result, error, progress, message, scene,
                                       level)
        except JobStoreError as exc:
            if not ending:
                raise
            self.notifier.here(user_id, job_id, unstored(status, job_id, uuid, result, error, exc))
            return Replied(True, status, persisted=False)
        match answer[0]:
            case b"auth":
                raise PeerAuthError.of(uuid)
            case b"nojob":
                raise unknown_job(job_id)
            case b"other":
                raise others_job(job_id)
            case b"stale":
                return Replied(False, answer[1].decode())
        job = self.jobs.job(user_id, job_id, pairs(answer[1:]))
        if not ending:
            self.notifier.progress_here(user_id, job_id, progress, message, level)
            return Replied(True, job.status)
        self.notifier.here(user_id, job_id, job.envelope(result=result))
        return Replied(True, status)
