"""Pages cut from any result text: each fits its budget as JSON, none splits a character, and together
they are the text. Seeded texts mix what JSON escapes (quotes, controls, DEL) with characters of one to
four UTF-8 bytes. A result's JSON size, which a peer checks against its cap, is measured the same way."""

from __future__ import annotations

import json
import random

import pytest

from blendbus import encoding, paging

ALPHABET = ["a", " ", "\n", '"', "\\", "\x00", "\x1f", "\t", "\x7f", "é", "€", "中", "\u2028", "😀"]


def texts(count: int, longest: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return ["".join(rng.choice(ALPHABET) for _ in range(rng.randrange(longest))) for _ in range(count)]


@pytest.mark.parametrize("text", [*texts(300, 300, 1), *(c * 50 for c in ALPHABET)])
def test_the_escaped_length_is_what_json_writes(text: str) -> None:
    assert encoding.escaped_extra(text.encode()) == len(json.dumps(text)) - 2 - len(text.encode())


@pytest.mark.parametrize("length", [64, 65, 127, 1000, 4096])
def test_pages_fit_their_budget_and_rejoin_to_the_text(length: int) -> None:
    for text in [*texts(60, 6000, length), "😀" * 3000, "\x00" * 5000, "a" * 5000]:
        data, offset, pages = text.encode(), 0, []
        while offset is not None:
            cut = paging.cut({"job_id": "j"}, data, 0, len(data), paging.TEXT, offset, length)
            assert len(json.dumps(cut["result"])) <= length
            assert cut["next_offset"] is None or cut["next_offset"] > offset
            pages.append(cut["result"])
            offset = cut["next_offset"]
        assert "".join(pages) == text


@pytest.mark.parametrize("value", [*texts(100, 400, 7), "\ud800 lone", "", 12, None, {"a": ["é", 1.5, True]}])
def test_a_results_json_size_is_its_encoded_length(value: object) -> None:
    assert encoding.json_size(value) == len(json.dumps(value, separators=(",", ":")))


ASCII = [c for c in ALPHABET if c.isascii()]


@pytest.mark.parametrize("text", [*texts(20, 3000, 3), "".join(random.Random(4).choice(ASCII) for _ in range(9000)),
                                  "a" * 9000, ""])
def test_a_page_of_a_result_in_memory_is_the_page_of_its_whole_text(text: str) -> None:
    """A result still in memory (the first page, or one just delivered) is cut from its window alone when
    it is ASCII; whatever path is taken, the page is the one cut from the whole text."""
    data = text.encode()
    for offset in (0, 1, 63, 64, 1000, len(data) - 1, len(data), len(data) + 10):
        for length in (64, 100, 4096):
            whole = paging.cut({"job_id": "j"}, data, 0, len(data), paging.TEXT, offset, length)
            assert paging.page({"job_id": "j", "result": text}, offset, length) == whole
