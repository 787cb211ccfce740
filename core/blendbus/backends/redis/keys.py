"""Where the Redis backend keeps what (docs/deployment.md lists every key).

Each user's keys share one hash tag, `{user}`, so every script touches one slot; the few keys
shared by all users are touched by plain commands only, never inside a script.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qs, quote, unquote, urlencode, urlsplit, urlunsplit

DEFAULT_PREFIX = "blendbus"


def parse_url(url: str) -> tuple[str, str]:
    """(the URL redis-py connects to, the key prefix): `?prefix=` is ours, everything else is redis-py's."""
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    prefix = query.pop("prefix", [DEFAULT_PREFIX])[0]
    if not prefix or any(c in prefix for c in "{}\n"):
        raise ValueError(f"prefix {prefix!r}: use letters, digits, ':' or '-'")
    return urlunsplit(parts._replace(query=urlencode(query, doseq=True))), prefix


def decoded(value: bytes | str | None) -> str:
    """A Redis reply as text (None: empty)."""
    return value.decode() if isinstance(value, bytes) else (value or "")


@dataclass(frozen=True)
class Keys:
    """The key names under one prefix."""

    prefix: str

    def record(self, kind: str, key: str) -> str:
        """One of the built-in authorization server's records (records.py): shared by all users."""
        return f"{self.prefix}:oauth:{kind}:{key}"

    def user(self, user_id: str) -> str:
        """The key base of one user (`<prefix>:{<user>}:`): every key of theirs starts with it."""
        return f"{self.prefix}:{{{quote(user_id, safe='')}}}:"

    def job(self, user_id: str, job_id: str) -> str:
        return f"{self.user(user_id)}job:{job_id}"

    def result(self, user_id: str, job_id: str) -> str:
        """A job's result text (a page is a GETRANGE of it)."""
        return f"{self.job(user_id, job_id)}:result"

    def staged(self, user_id: str, job_id: str) -> str:
        """A large result while it is written in pieces; renamed to `result` when the job moves."""
        return f"{self.result(user_id, job_id)}:new"

    def peer(self, user_id: str, uuid: str) -> str:
        return f"{self.user(user_id)}peer:{uuid}"

    def queue(self, user_id: str, uuid: str) -> str:
        return f"{self.user(user_id)}q:{uuid}"

    def open_jobs(self, user_id: str, uuid: str) -> str:
        return f"{self.user(user_id)}jobs:open:{uuid}"

    def peers(self, user_id: str) -> str:
        return f"{self.user(user_id)}peers"

    def usage(self, user_id: str) -> str:
        return f"{self.user(user_id)}usage"

    def calls(self, user_id: str) -> str:
        """A user's calls in flight: job id -> lease deadline."""
        return f"{self.user(user_id)}calls"

    def jobs_by_time(self, user_id: str) -> str:
        return f"{self.user(user_id)}jobs:all"

    def events(self, user_id: str) -> str:
        """The `_message_bus` feed: a stream whose entry ids are `<seq>-0`."""
        return f"{self.user(user_id)}ev"

    def event_seq(self, user_id: str) -> str:
        return f"{self.user(user_id)}evseq"

    def member(self, user_id: str, uuid: str = "") -> str:
        """A peer's member in the global liveness set."""
        return f"{quote(user_id, safe='')}\n{uuid}"

    @staticmethod
    def peer_of(member: bytes | str) -> tuple[str, str]:
        """(user_id, uuid) of a member of the liveness set: `member`'s inverse."""
        user, _, uuid = decoded(member).partition("\n")
        return unquote(user), uuid

    def job_of(self, key: bytes | str) -> tuple[str, str] | None:
        """(user_id, job_id) of a job's key: `job`'s inverse; None for any other key (its result too)."""
        head, _, job_id = decoded(key).rpartition("}:job:")
        if not head.startswith(f"{self.prefix}:{{") or not job_id or ":" in job_id:
            return None
        return unquote(head[len(self.prefix) + 2:]), job_id

    # ---- shared by all users ----------------------------------------------------------------
    @property
    def alive(self) -> str:
        """Peers' liveness deadlines (member `member(user, uuid)`)."""
        return f"{self.prefix}:alive"

    @property
    def users(self) -> str:
        """Every user who has had jobs (retention walks it)."""
        return f"{self.prefix}:users"

    @property
    def replicas(self) -> str:
        return f"{self.prefix}:replicas"

    @property
    def epoch(self) -> str:
        return f"{self.prefix}:epoch"

    @property
    def channel(self) -> str:
        return f"{self.prefix}:notify"
