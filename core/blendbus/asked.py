"""The questions jobs ask their callers (`job.ask`, `job.sample`): each kept until it is answered,
and each answer brought to its job.

A question travels to the callers waiting on its job as a note (questions.py), and a note reaches
only those waiting at that moment. A 2026-07-28 task has nobody waiting: its client polls
`tasks/get`, on any replica, and must find the question there as `inputRequests`. So every question
is also held in the backend's `Records`, from before its note goes out (an answer that comes back at
once must find it to clear it) until it is answered, its job ends, or `ASK_TIMEOUT_S` passes.
"""

from __future__ import annotations

from typing import Any

from . import protocol as p
from .backends.backend import Backend

KIND = "question"
"""The `Records` kind; the key is the user and the job."""


class Asked:
    """The outstanding question of each job, shared by every replica of the backend, and the way its
    answer reaches the job."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend

    @staticmethod
    def _key(user_id: str, job_id: str) -> str:
        return f"{user_id}\n{job_id}"

    async def hold(self, user_id: str, uuid: str, token: str, question: dict[str, Any]) -> None:
        """Peer `uuid` says its job waits on `question` (as its note carries it: protocol.ASK_FIELD's
        fields and `job_id`). Written before the note goes out, so checked first as the reply itself is:
        that peer (PeerAuthError), its own open job (otherwise the reply is refused with the reason)."""
        await self.backend.peers.authenticate(user_id, uuid, token)
        job = await self.backend.jobs.get(user_id, question["job_id"], result=False)
        if self.backend.records is not None and job is not None and job.target_uuid == uuid \
                and job.status in p.OPEN_STATUSES:
            await self.backend.records.put(KIND, self._key(user_id, job.job_id), question, ttl_s=p.ASK_TIMEOUT_S)

    async def outstanding(self, user_id: str, job_id: str) -> dict[str, Any] | None:
        """The question the job waits on, if any (a job asks one at a time)."""
        records = self.backend.records
        return None if records is None else await records.get(KIND, self._key(user_id, job_id))

    async def answer(self, user_id: str, job_id: str, ask_id: str, action: str, content: dict[str, Any] | None,
                     reason: str = "") -> None:
        """Bring a running job the answer to question `ask_id`, which is then no longer outstanding
        (LookupError: the job is over, or its peer gone)."""
        job = await self.backend.jobs.get(user_id, job_id, result=False)
        if job is None or job.status != p.RUNNING or job.target_uuid is None:
            raise LookupError(f"job {job_id!r} is not running: nobody is waiting for this answer")
        payload = p.answer(job_id, ask_id, action, content, reason)
        await self.backend.peers.push(user_id, job.target_uuid, p.ack_key(payload), payload)
        held = await self.outstanding(user_id, job_id)
        if held is not None and held.get("id") == ask_id and self.backend.records is not None:
            await self.backend.records.take(KIND, self._key(user_id, job_id))
