"""The question each job is waiting on, kept in the backend's `Records` until it is answered.

A question travels to the callers waiting on its job as a note (questions.py), and a note reaches
only those waiting at that moment. A 2026-07-28 task has nobody waiting: its client polls
`tasks/get`, on any replica, and must find the question there as `inputRequests`. So every question
is also held here, from before its note goes out (an answer that comes back at once must find it
to clear it) until it is answered, its job ends, or `ASK_TIMEOUT_S` passes.
"""

from __future__ import annotations

from typing import Any

from . import protocol as p
from .backends.base import Records

KIND = "question"
"""The `Records` kind; the key is the user and the job."""


class Asked:
    """The outstanding question of each job, shared by every replica of the backend."""

    def __init__(self, records: Records | None) -> None:
        self.records = records

    @staticmethod
    def _key(user_id: str, job_id: str) -> str:
        return f"{user_id}\n{job_id}"

    async def hold(self, user_id: str, job_id: str, question: dict[str, Any]) -> None:
        """`question` (as its note carries it: protocol.ASK_FIELD's fields and `job_id`) waits for an answer."""
        if self.records is not None:
            await self.records.put(KIND, self._key(user_id, job_id), question, ttl_s=p.ASK_TIMEOUT_S)

    async def outstanding(self, user_id: str, job_id: str) -> dict[str, Any] | None:
        """The question the job waits on, if any (a job asks one at a time)."""
        return None if self.records is None else await self.records.get(KIND, self._key(user_id, job_id))

    async def settle(self, user_id: str, job_id: str, ask_id: str) -> None:
        """Question `ask_id` was answered: it is no longer outstanding (a later one stays)."""
        held = await self.outstanding(user_id, job_id)
        if held is not None and held.get("id") == ask_id and self.records is not None:
            await self.records.take(KIND, self._key(user_id, job_id))
