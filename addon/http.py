"""HTTP for plugin handlers inside Blender: stdlib only, always with a timeout, errors a user can act on.

Plugins' addon-side packages import this instead of each carrying their own client.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from blendbus import __version__

USER_AGENT = f"blendbus/{__version__}"
DEFAULT_TIMEOUT_S = 20.0


class HTTPError(RuntimeError):
    """A request failed; the message names the URL (without credentials) and what happened."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def url(base: str, path: str, **query: Any) -> str:
    full = base.rstrip("/") + "/" + path.lstrip("/")
    params = {k: v for k, v in query.items() if v is not None and v != ""}
    return full + ("?" + urllib.parse.urlencode(params) if params else "")


def request_json(
    target: str,
    *,
    method: str = "GET",
    headers: dict[str, str] | None = None,
    body: Any = None,
    timeout: float = DEFAULT_TIMEOUT_S,
) -> Any:
    data = None
    all_headers = {"User-Agent": USER_AGENT, "Accept": "application/json", **(headers or {})}
    if body is not None:
        data = json.dumps(body).encode()
        all_headers["Content-Type"] = "application/json"
    req = urllib.request.Request(target, data=data, headers=all_headers, method=method)
    shown = target.split("?")[0]
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - URL comes from preferences
            raw = resp.read()
    except urllib.error.HTTPError as exc:
        raise HTTPError(f"{method} {shown} answered HTTP {exc.code}", exc.code) from None
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise HTTPError(f"{method} {shown} failed: {reason} (timeout {timeout:g}s)") from None
    try:
        return json.loads(raw)
    except ValueError:
        raise HTTPError(f"{method} {shown} did not return JSON") from None
