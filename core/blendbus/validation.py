"""Argument errors in words: each bad field named, unknown ones with a suggestion.

Used by the server before anything is dispatched and by the peer before a handler runs, so a
mistake reads the same wherever it is caught. Needs only the jsonschema errors it is given.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .suggest import did_you_mean


def validation_message(tool: str, errors: Iterable[Any], *, limit: int = 5) -> str:
    """One message for the first `limit` jsonschema errors of a call to `tool`."""
    parts = []
    for err in list(errors)[:limit]:
        if err.validator == "required":
            missing = err.message.split("'")[1] if "'" in err.message else err.message
            field_path = "/".join(str(x) for x in [*err.absolute_path, missing])
            parts.append(f"missing required argument '{field_path}'")
        elif err.validator == "additionalProperties":
            allowed = set(err.schema.get("properties", {})) if isinstance(err.schema, dict) else set()
            for extra in sorted(set(err.instance) - allowed if isinstance(err.instance, dict) else ()):
                where = "/".join(str(x) for x in [*err.absolute_path, extra])
                parts.append(f"unknown argument '{where}'{did_you_mean(extra, allowed)};"
                             f" this tool takes {', '.join(sorted(allowed)) or 'no arguments'}")
        elif err.validator == "oneOf" and all(set(sub) == {"required"} for sub in err.validator_value):
            names = [name for sub in err.validator_value for name in sub["required"]]
            parts.append(f"pass exactly one of {', '.join(names)}")
        else:
            where = "/".join(str(x) for x in err.absolute_path) or "(arguments)"
            shown = err.message if len(err.message) < 300 else err.message[:300] + "..."
            parts.append(f"argument '{where}': {shown}")
    return f"invalid arguments for {tool}: " + "; ".join(parts)
