"""`Jobs` in Redis: a hash per job, its result text in a string of its own, per-user retention kept by
the scripts (`lua/library.lua`: create, settle, trim), and the whole store's caps kept by `prune`."""

from __future__ import annotations

import json
import time
from typing import Any

from ...encoding import encodes_over, text_pieces
from ...paging import JSON, result_format
from ...protocol import OPEN_STATUSES, STATUS_RANK
from ..base import (DEFAULT_MAX_AGE_S, DEFAULT_MAX_BYTES, DEFAULT_MAX_BYTES_PER_USER, DEFAULT_MAX_JOBS,
                    DEFAULT_MAX_JOBS_PER_USER, ROW_OVERHEAD_BYTES, DuplicateJob, OverQuota)
from ..snapshots import UNSET, Job
from .connection import Connection, store_errors
from .keys import decoded

ORPHAN_AFTER_S = 60.0
"""A job recorded but in no queue for this long was orphaned by a dying replica (swept by `prune`)."""
STAGE_RESULT_BYTES = 1024 * 1024
"""A result whose text is longer is written to Redis in pieces of this size, never as one command."""
LISTED_FIELDS = ("kind", "command", "target", "status", "error", "progress", "message", "created", "updated")


def scene_text(scene: dict[str, Any] | None) -> str:
    """A peer's scene account as the scripts store it ('' for none)."""
    return "" if scene is None else json.dumps(scene, separators=(",", ":"))


def lower_than(status: str) -> list[str]:
    """The statuses a job may move to `status` from (protocol.STATUS_RANK): the scripts' `forward`."""
    return [s for s, rank in STATUS_RANK.items() if rank < STATUS_RANK[status]]


class RedisJobs:
    """`Jobs` in Redis hashes, with per-user retention (age, jobs and bytes) kept by the scripts after
    every write, and the whole store's caps (`max_jobs`, `max_bytes`) at each `prune`: a script may
    touch one user's keys only (one hash slot), so no script can see the whole store."""

    def __init__(self, link: Connection, *, max_age_s: float = DEFAULT_MAX_AGE_S, max_jobs: int = DEFAULT_MAX_JOBS,
                 max_bytes: int = DEFAULT_MAX_BYTES, max_jobs_per_user: int = DEFAULT_MAX_JOBS_PER_USER,
                 max_bytes_per_user: int = DEFAULT_MAX_BYTES_PER_USER) -> None:
        self.link, self.keys = link, link.keys
        self.max_age_s, self.max_jobs, self.max_bytes = max_age_s, max_jobs, max_bytes
        self.max_jobs_per_user = min(max_jobs_per_user, max_jobs)
        self.max_bytes_per_user = min(max_bytes_per_user, max_bytes)
        self.orphan_after_s = ORPHAN_AFTER_S

    def overhead(self, user_id: str) -> int:
        """What a job costs beyond its own strings (the scripts add those): as the SQLite store counts it."""
        return ROW_OVERHEAD_BYTES + len(user_id.encode())

    def noted_user(self, user_id: str) -> Any:
        """`also` for a script that records a job: the user joins the set retention walks."""
        return lambda pipe: pipe.sadd(self.keys.users, user_id)

    def refused(self, answer: list[Any], job_id: str) -> Exception | None:
        """The error for a script's refusal to record a job (`create` in lua/library.lua), if it refused."""
        if answer[0] == b"taken":
            return DuplicateJob(f"job id {job_id!r} is already used; choose another or omit it")
        if answer[0] == b"full":
            return OverQuota.of_user(int(answer[1]), int(answer[2]), self.max_jobs_per_user, self.max_bytes_per_user)
        return None

    @store_errors
    async def create(self, user_id: str, job_id: str, *, kind: str, command: str, target_uuid: str | None,
                     payload_bytes: int = 0) -> None:
        answer = await self.link.run("create", [self.keys.job(user_id, job_id)], [
            self.keys.user(user_id), job_id, kind, command, target_uuid or "", time.time(), self.overhead(user_id),
            payload_bytes, self.max_jobs_per_user, self.max_bytes_per_user], also=self.noted_user(user_id))
        if (error := self.refused(answer, job_id)) is not None:
            raise error

    async def result_args(self, user_id: str, job_id: str, result: Any) -> list[Any]:
        """How a script receives `result` (how, text, format): inline, or staged in pieces beforehand
        (a large result never travels as one command); none when `result` is UNSET."""
        if result is UNSET:
            return ["0", "", ""]
        if encodes_over(result, STAGE_RESULT_BYTES):
            await self._stage(self.keys.staged(user_id, job_id), result)
            return ["2", "", result_format(result)]
        return ["1", b"".join(text_pieces(result)), result_format(result)]

    async def _stage(self, key: str, result: Any) -> None:
        """Write a large result's text to `key` a piece at a time (a few pieces per round trip)."""
        await self.link.redis.delete(key)
        async with self.link.redis.pipeline(transaction=False) as pipe:
            for n, piece in enumerate(text_pieces(result, STAGE_RESULT_BYTES)):
                pipe.append(key, piece)
                if n % 8 == 7:
                    await pipe.execute()
            await pipe.execute()

    @store_errors
    async def advance(self, user_id: str, job_id: str, status: str, *, result: Any = UNSET,
                      error: str | None = None, scene: dict[str, Any] | None = None) -> bool:
        moved = await self.link.run("advance", [self.keys.job(user_id, job_id)], [
            self.keys.user(user_id), job_id, status, time.time(), *await self.result_args(user_id, job_id, result),
            int(error is not None), error or "", int(status not in OPEN_STATUSES), self.max_jobs_per_user,
            self.max_bytes_per_user, scene_text(scene), *lower_than(status)])
        return bool(moved)

    @store_errors
    async def set_progress(self, user_id: str, job_id: str, fraction: float | None, message: str | None) -> None:
        await self.link.run("progress", [self.keys.job(user_id, job_id)], [
            self.keys.user(user_id), job_id, repr(fraction) if fraction is not None else "", int(message is not None),
            message or "", time.time(), self.max_jobs_per_user, self.max_bytes_per_user])

    @store_errors
    async def get(self, user_id: str, job_id: str, *, result: bool = True) -> Job | None:
        key = self.keys.job(user_id, job_id)
        if not result:
            raw = await self.link.redis.hgetall(key)
            return self.job(user_id, job_id, raw) if raw else None
        async with self.link.redis.pipeline(transaction=True) as pipe:
            pipe.hgetall(key)
            pipe.get(self.keys.result(user_id, job_id))
            raw, data = await pipe.execute()
        return self.job(user_id, job_id, raw, data) if raw else None

    @store_errors
    async def read_result(self, user_id: str, job_id: str, offset: int, length: int) -> tuple[bytes, int, str] | None:
        key = self.keys.result(user_id, job_id)
        async with self.link.redis.pipeline(transaction=True) as pipe:
            pipe.hget(self.keys.job(user_id, job_id), "format")
            pipe.strlen(key)
            pipe.getrange(key, max(offset, 0), max(offset, 0) + length - 1)
            fmt, total, data = await pipe.execute()
        if fmt is None:  # no such job, or no result stored
            return None
        return (data if offset < total and length > 0 else b""), total, decoded(fmt)

    @store_errors
    async def recent(self, user_id: str, limit: int, before: float | None = None) -> list[Job]:
        top = f"({before}" if before is not None else "+inf"
        ids = [decoded(j) for j in await self.link.redis.zrevrangebyscore(self.keys.jobs_by_time(user_id), top, "-inf",
                                                                    start=0, num=limit)]
        async with self.link.redis.pipeline(transaction=False) as pipe:
            for job_id in ids:
                pipe.hmget(self.keys.job(user_id, job_id), *LISTED_FIELDS)
            rows = await pipe.execute()
        return [self.job(user_id, job_id, dict(zip(LISTED_FIELDS, row))) for job_id, row in zip(ids, rows)
                if row[3] is not None]

    @staticmethod
    def job(user_id: str, job_id: str, fields: dict[Any, Any], data: bytes | None = None) -> Job:
        """A job from its hash's fields (as HGETALL or HMGET returns them)."""
        f = {decoded(k): v for k, v in fields.items()}
        fmt = f.get("format")
        return Job(user_id=user_id, job_id=job_id, kind=decoded(f["kind"]), command=decoded(f["command"]),
                   target_uuid=decoded(f.get("target")) or None, status=decoded(f["status"]), result_data=data,
                   error=decoded(f.get("error")),
                   progress=float(f["progress"]) if f.get("progress") is not None else None,
                   message=decoded(f["message"]) if f.get("message") is not None else None, created=float(f["created"]),
                   updated=float(f["updated"]), result_format=decoded(fmt) or JSON,
                   result_bytes=int(f.get("rlen") or 0) if fmt else None,
                   scene=json.loads(f["scene"]) if f.get("scene") else None)

    @store_errors
    async def in_flight(self, user_id: str, target_uuid: str) -> list[str]:
        members = await self.link.redis.smembers(self.keys.open_jobs(user_id, target_uuid))
        return sorted(decoded(m) for m in members)

    async def recover(self) -> int:
        """Nothing to do: peers and their jobs outlive any one replica. A job is marked lost only when its
        peer's liveness lapses (the reaper), never because a replica restarted."""
        return 0

    @store_errors
    async def prune(self) -> int:
        """Retention, as the SQLite store keeps it: each user within age and their own caps; then, if the
        whole store is over `max_jobs` or `max_bytes`, every user above their fair share (the cap divided
        by the users with jobs) down to it, oldest finished jobs first. Jobs orphaned by a replica that
        died between recording and queuing them (still `queued` after `orphan_after_s` and in no queue)
        become lost. Returns the jobs removed."""
        now = time.time()
        users = sorted(decoded(user) for user in await self.link.redis.smembers(self.keys.users))
        removed = 0
        for user_id in users:
            removed += await self._prune(user_id, now, self.max_jobs_per_user, self.max_bytes_per_user)
        held = {user: used for user, used in zip(users, await self._usages(users), strict=True) if used[0]}
        over = sum(j for j, _ in held.values()) > self.max_jobs or sum(b for _, b in held.values()) > self.max_bytes
        if held and over:
            share_jobs, share_bytes = self.max_jobs // len(held), self.max_bytes // len(held)
            for user_id, (jobs, size) in held.items():
                if jobs > share_jobs or size > share_bytes:
                    removed += await self._prune(user_id, now, share_jobs, share_bytes)
        return removed

    async def _prune(self, user_id: str, now: float, max_jobs: int, max_bytes: int) -> int:
        return int(await self.link.run("prune", [self.keys.usage(user_id)], [
            self.keys.user(user_id), now - self.max_age_s, max_jobs, max_bytes, now - self.orphan_after_s, now,
            "the server replica that recorded this job stopped before queuing it; it never ran"]))

    async def _usages(self, users: list[str]) -> list[tuple[int, int]]:
        """(jobs, bytes) of each of `users`, in one round trip."""
        async with self.link.redis.pipeline(transaction=False) as pipe:
            for user in users:
                pipe.hmget(self.keys.usage(user), "jobs", "bytes")
            found = await pipe.execute()
        return [(int(jobs or 0), int(size or 0)) for jobs, size in found]

    @store_errors
    async def usage(self, user_id: str) -> tuple[int, int]:
        jobs, size = await self.link.redis.hmget(self.keys.usage(user_id), "jobs", "bytes")
        return int(jobs or 0), int(size or 0)

    @store_errors
    async def users(self) -> list[str]:
        known = sorted(decoded(user) for user in await self.link.redis.smembers(self.keys.users))
        return [user for user, (jobs, _) in zip(known, await self._usages(known), strict=True) if jobs]

    async def close(self) -> None:
        await self.link.close()
