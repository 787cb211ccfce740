"""JSON for large results, in pieces: a 64 MB result should not exist twice more as JSON text.

`json_pieces` yields exactly what `json.dumps(value, separators=(",", ":"))` returns (ASCII-only),
in pieces of about `size` characters, so a large result can be written out piecewise. `text_pieces`
yields a result's *text* as stored and paged (paging.py): a string's own UTF-8, anything else's JSON.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import partial
from typing import Any

_dumps = partial(json.dumps, separators=(",", ":"))


def encodes_over(value: Any, limit: int) -> bool:
    """Whether `value` would encode to more than about `limit` bytes. Stops counting once it does,
    so it costs little next to encoding."""
    return encoded_size(value, limit) > limit


def encoded_size(value: Any, limit: int) -> int:
    """About how many bytes `value` encodes to, counted only until that passes `limit` (then some
    number above it): a size, at no more cost than `limit` bytes of encoding."""
    stack, total = [value], 0
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            total += len(item) + 2
        elif isinstance(item, dict):
            total += 2 * len(item) + 2
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            total += len(item) + 2
            stack.extend(item)
        else:
            total += 8
        if total > limit:
            return total
    return total


def _weights() -> tuple[bytes, bytes]:
    """(the bytes that add nothing, a table from each byte to what it adds) for `escaped_extra`."""
    adds = [0] * 256
    for byte in [*range(0x20), 0x7F]:
        adds[byte] = 1 if byte in b"\b\f\n\r\t" else 5  # \n, or \u0001
    adds[ord('"')] = adds[ord("\\")] = 1
    for first, last, more in ((0xC0, 0xDF, 4), (0xE0, 0xEF, 3), (0xF0, 0xFF, 8)):  # a 2-, 3- or 4-byte character's
        for byte in range(first, last + 1):  # first byte: \uXXXX (6 bytes; 12 as a surrogate pair)
            adds[byte] = more
    return bytes(b for b in range(256) if not adds[b]), bytes(adds)


_PLAIN, _ADDS = _weights()


def escaped_extra(data: bytes) -> int:
    """How many bytes longer the UTF-8 text `data` is as the body of a JSON string, as json.dumps writes it
    (ASCII only), than as bytes. Counted at C speed, without encoding: a page is cut to fit its budget
    once its escaped length is known, whatever the result holds."""
    added = data.translate(None, _PLAIN).translate(_ADDS)
    return sum(weight * added.count(weight) for weight in (1, 3, 4, 5, 8))


def json_size(value: Any) -> int:
    """Exactly `len(json.dumps(value, separators=(",", ":")))`. A string, the usual large result (a
    script's output), is measured without being encoded: a peer checks every result against its cap."""
    if isinstance(value, str):
        try:
            data = value.encode()
        except UnicodeEncodeError:  # a lone surrogate, which JSON escapes: measure it the long way
            return len(_dumps(value))
        return len(data) + escaped_extra(data) + 2
    return len(_dumps(value))


def json_pieces(value: Any, size: int) -> Iterator[str]:
    """The compact JSON of `value` in pieces; only long strings and large containers are split."""
    if not encodes_over(value, size):
        yield _dumps(value)
    elif isinstance(value, str):
        yield '"'
        for start in range(0, len(value), size):
            yield _dumps(value[start:start + size])[1:-1]
        yield '"'
    elif isinstance(value, dict):
        yield "{"
        for i, (key, item) in enumerate(value.items()):
            # json.dumps turns non-string keys (numbers, booleans, None) into strings: do the same.
            yield ("," if i else "") + (_dumps(key) if isinstance(key, str) else _dumps({key: None})[1:-6]) + ":"
            yield from json_pieces(item, size)
        yield "}"
    else:  # a list or tuple
        yield "["
        for i, item in enumerate(value):
            if i:
                yield ","
            yield from json_pieces(item, size)
        yield "]"


def text_pieces(value: Any, size: int = 1024 * 1024) -> Iterator[bytes]:
    """The result text of `value` as UTF-8 bytes, in pieces: a string as it is, anything else as its
    compact JSON (what `paging.result_text` is, without holding it whole)."""
    if isinstance(value, str):
        for start in range(0, len(value), size):
            yield value[start:start + size].encode()
    else:
        for piece in json_pieces(value, size):
            yield piece.encode("ascii")


def text_size(value: Any, size: int = 1024 * 1024) -> int:
    """Length in bytes of the result text of `value` (`text_pieces`), found without holding all of it."""
    return sum(len(piece) for piece in text_pieces(value, size))
