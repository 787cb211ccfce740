"""Key names the Redis backend reads back: each inverse gives what its key was made from."""

from __future__ import annotations

import pytest

from blendbus.backends.redis.keys import Keys

KEYS = Keys("blendbus-test:x")


@pytest.mark.parametrize("user_id", ["local", "a:b", "{braces}", "new\nline", "é/%", ""])
def test_a_job_key_and_a_liveness_member_give_back_their_names(user_id: str) -> None:
    assert KEYS.job_of(KEYS.job(user_id, "j-1")) == (user_id, "j-1")
    assert KEYS.job_of(KEYS.job(user_id, "j-1").encode()) == (user_id, "j-1")
    assert KEYS.peer_of(KEYS.member(user_id, "uuid-1")) == (user_id, "uuid-1")


def test_only_a_jobs_own_key_names_a_job() -> None:
    for key in (KEYS.result("u", "j-1"), KEYS.staged("u", "j-1"), KEYS.peer("u", "p"), KEYS.usage("u"),
                Keys("other").job("u", "j-1"), KEYS.alive):
        assert KEYS.job_of(key) is None
