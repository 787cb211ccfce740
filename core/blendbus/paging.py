"""Results too large for one response, sent a page at a time.

Official MCP clients refuse large messages by default: the Python SDK drops SSE events over 1 MiB,
the TypeScript SDK's stdio transport closes the connection on a line over 10 MiB. A tool result
carries its envelope twice (structuredContent and JSON text), so a result whose JSON is larger
than the inline budget is cut: the envelope carries the first page of its *result text* (a script's
stdout, otherwise the result's JSON text, as `result_format` says) with `truncated: true`,
`result_bytes`, `offset` and `next_offset`, and `blender_get_job(job_id, offset=N, length=M)` returns the following pages.
Offsets count UTF-8 bytes of the result text; a page never splits a character. The stores keep the
result text as it is paged (backends/base.py), so a page is read from them alone: its cost does not
depend on the size of the result.
"""

from __future__ import annotations

import json
from typing import Any

from .encoding import encodes_over, escaped_extra

DEFAULT_INLINE_RESULT_MAX_BYTES = 256 * 1024
"""Twice this (structuredContent plus the JSON text) and the envelope stay well under 1 MiB."""
MIN_PAGE_BYTES = 64
MAX_PAGE_BYTES = 2 * 1024 * 1024
"""The largest page a client may ask for with `length` (or the inline budget, when that is larger). A page's
response carries it twice, the text block escaping it again: about 2× on the wire, at worst about 3×, which
stays inside the TypeScript SDK's 10 MiB stdio line. A Python SDK client must lift its 1 MiB SSE event
limit (or take JSON responses) before asking for more than about 400 KiB; docs/limits.md."""
PAGE_FIELDS = frozenset({"truncated", "result_bytes", "result_format", "offset", "next_offset", "more"})
"""What `page` adds to an envelope."""


TEXT, JSON = "text", "json"
"""The two forms of a result text: a string result is its own text, anything else its compact JSON."""


def result_format(result: Any) -> str:
    return TEXT if isinstance(result, str) else JSON


def result_text(result: Any) -> str:
    """What pages are cut from: a string as it is, anything else as its compact JSON."""
    return result if isinstance(result, str) else json.dumps(result, separators=(",", ":"))


def fits(result: Any, budget: int) -> bool:
    return not encodes_over(result, budget)


def page(env: dict[str, Any], offset: int, length: int) -> dict[str, Any]:
    """`env` with its result replaced by the page of `length` bytes (at most) of its result text that
    starts at `offset`, so that the page's JSON stays within `length` bytes too."""
    result = env.get("result")
    if isinstance(result, str) and result.isascii():  # a byte is a character: encode only the window
        base, size = window(min(offset, len(result)), length)
        return cut(env, result[base:base + size].encode("ascii"), base, len(result), TEXT, offset, length)
    data = result_text(result).encode("utf-8")
    return cut(env, data, 0, len(data), result_format(result), offset, length)


WINDOW_SLACK = 4
"""Bytes to read beyond a page: a page never splits a UTF-8 character (at most 4 bytes)."""


def window(offset: int, length: int) -> tuple[int, int]:
    """What to read from the stored result text to cut the page at `offset`: (start, bytes)."""
    return max(offset, 0), max(length, MIN_PAGE_BYTES) + WINDOW_SLACK


def cut(env: dict[str, Any], data: bytes, base: int, total: int, fmt: str, offset: int, length: int) -> dict[str, Any]:
    """The page at `offset` of a result text `total` bytes long, of which `data` holds the bytes from
    `base` on (all of it, or the `window` read from the store): `env` with that page as its result."""
    length = max(length, MIN_PAGE_BYTES)
    start = min(max(offset, 0), total)
    while start < total and start - base < len(data) and _continuation(data[start - base]):
        start += 1  # an offset inside a character: start after it
    end = _boundary(data, base, total, min(total, start + length))
    while end > start and (end - start) + (extra := escaped_extra(data[start - base:end - base])) + 2 > length:
        # Escapes (\n, \u0000, \u00e9) made it longer: shrink in proportion (never to nothing: a character
        # escapes to 12 bytes at most, a page holds MIN_PAGE_BYTES)
        shorter = _boundary(data, base, total, start + max(1, (end - start) * (length - 2) // (end - start + extra)))
        end = shorter if shorter > start else _next_character(data, base, total, start)
    text = data[start - base:end - base].decode("utf-8")
    job_id = env.get("job_id")
    more = end < total
    return {
        **env,
        "result": text,
        "truncated": start > 0 or more,
        "result_bytes": total,
        "result_format": fmt,
        "offset": start,
        "next_offset": end if more else None,
        **({"more": f"the result has {total} bytes; call blender_get_job(job_id={job_id!r}, offset={end})"
                     " for the next page"} if more else {}),
    }


def inline(env: dict[str, Any], budget: int | None) -> dict[str, Any]:
    """The envelope as sent in a tool result: whole, or its first page when the result is too large. A page
    (`blender_get_job` with an offset) goes as it is: its length was asked for, within MAX_PAGE_BYTES."""
    if budget is None or env.get("result") is None or "next_offset" in env or fits(env["result"], budget):
        return env
    return page(env, 0, budget)


def _continuation(byte: int) -> bool:
    return byte & 0xC0 == 0x80


def _next_character(data: bytes, base: int, total: int, start: int) -> int:
    """Where the character that begins at `start` ends."""
    end = start + 1
    while end < total and end - base < len(data) and _continuation(data[end - base]):
        end += 1
    return end


def _boundary(data: bytes, base: int, total: int, end: int) -> int:
    """The nearest character boundary at or before `end` (`data` holds the bytes from `base` on)."""
    while base < end < total and end - base < len(data) and _continuation(data[end - base]):
        end -= 1
    return end
