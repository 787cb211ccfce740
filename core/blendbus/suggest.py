"""'Did you mean ...?' for names a person typed: tools, arguments, preferences, plugins, hooks.

Stdlib only: the server, the CLI and the addon inside Blender all phrase a mistake the same way.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def close(name: str, known: Iterable[str], n: int = 3) -> list[str]:
    return difflib.get_close_matches(name, sorted(set(known)), n=n, cutoff=0.7)


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """' (did you mean 'x'?)' when something known is close to `name`, else ''."""
    found = close(name, known)
    if not found:
        return ""
    return " (did you mean " + " or ".join(repr(f) for f in found) + "?)"
