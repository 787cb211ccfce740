"""HTTP for plugin handlers inside Blender: stdlib only, always with a timeout, errors a user can act on.

Plugins' addon-side packages import this instead of each carrying their own client.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
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


@contextmanager
def _failures(method: str, target: str, timeout: float) -> Iterator[None]:
    """Turn urllib's errors into an HTTPError naming the request (never its query, where keys hide)."""
    shown = target.split("?")[0]
    try:
        yield
    except urllib.error.HTTPError as exc:
        raise HTTPError(f"{method} {shown} answered HTTP {exc.code}", exc.code) from None
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise HTTPError(f"{method} {shown} failed: {reason} (timeout {timeout:g}s)") from None


def request_json(
    target: str,
    *,
    method: str = "GET",
    headers: dict[str, str] | None = None,
    body: Any = None,
    data: bytes | None = None,
    content_type: str | None = None,
    timeout: float = DEFAULT_TIMEOUT_S,
) -> Any:
    """One request answered with JSON: `body` is sent as JSON, or `data` as is with `content_type`."""
    all_headers = {"User-Agent": USER_AGENT, "Accept": "application/json", **(headers or {})}
    if body is not None:
        data, content_type = json.dumps(body).encode(), "application/json"
    if content_type:
        all_headers["Content-Type"] = content_type
    req = urllib.request.Request(target, data=data, headers=all_headers, method=method)
    with _failures(method, target, timeout):
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - URL comes from preferences
            raw = resp.read()
    try:
        return json.loads(raw)
    except ValueError:
        raise HTTPError(f"{method} {target.split('?')[0]} did not return JSON") from None


def inside(root: Path, relative: str) -> Path:
    """`root / relative`, refusing any path that would land outside `root` (../, absolute, drive)."""
    target = (root / relative).resolve()
    if not target.is_relative_to(root.resolve()) or not relative or relative.startswith(("/", "\\")):
        raise ValueError(f"refused path {relative!r}: it escapes the download folder")
    return target


def download(
    source: str,
    dest: Path,
    *,
    md5: str | None = None,
    size: int | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = DEFAULT_TIMEOUT_S,
    progress: Callable[[int, int | None], None] | None = None,
    chunk: int = 256 * 1024,
) -> Path:
    """Stream `source` to `dest` (never whole in memory), checking length and md5; atomic on success.

    A cut-off body, a size or md5 that does not match, a timeout or an HTTP error raises
    HTTPError and leaves nothing at `dest`.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    req = urllib.request.Request(source, headers={"User-Agent": USER_AGENT, **(headers or {})})
    shown = source.split("?")[0]
    digest = hashlib.md5()  # noqa: S324 - integrity check against the API's published md5
    done = 0
    try:
        with _failures("GET", source, timeout), urllib.request.urlopen(req, timeout=timeout) as resp, \
                open(part, "wb") as out:  # noqa: S310
            declared = resp.headers.get("Content-Length")
            total = int(declared) if declared and declared.isdigit() else size
            while True:
                try:
                    block = resp.read(chunk)
                except http.client.IncompleteRead as exc:
                    raise HTTPError(f"download of {shown} was cut off after {done + len(exc.partial)} of"
                                    f" {total} bytes") from None
                if not block:
                    break
                out.write(block)
                digest.update(block)
                done += len(block)
                if progress is not None:
                    progress(done, total)
        if declared and declared.isdigit() and done != int(declared):
            raise HTTPError(f"download of {shown} was cut off after {done} of {declared} bytes")
        if size is not None and done != size:
            raise HTTPError(f"download of {shown} is {done} bytes, the API said {size}")
        if md5 is not None and digest.hexdigest() != md5.lower():
            raise HTTPError(f"md5 mismatch for {shown}: expected {md5}, got {digest.hexdigest()}")
        part.replace(dest)
        return dest
    finally:
        part.unlink(missing_ok=True)
