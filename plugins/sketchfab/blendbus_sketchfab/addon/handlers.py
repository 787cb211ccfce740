"""Sketchfab handlers: run inside Blender. The API key never appears in results or errors."""

from __future__ import annotations

from typing import Any

from blendbus_addon.http import HTTPError, request_json, url

GATE = "sketchfab.enabled"


def _api(job: Any) -> str:
    return str(job.setting("sketchfab.api_url") or "https://api.sketchfab.com/v3")


def _auth(job: Any) -> dict[str, str]:
    key = job.setting("sketchfab.api_key") or ""
    if not key:
        raise PermissionError("no Sketchfab API key: set the addon preference 'sketchfab.api_key'")
    return {"Authorization": f"Token {key}"}


def get_sketchfab_status(job: Any) -> dict[str, Any]:
    enabled = job.setting(GATE) is True
    status: dict[str, Any] = {"enabled": enabled, "api_url": _api(job), "key_set": bool(job.setting("sketchfab.api_key"))}
    if not enabled:
        status["how_to_enable"] = f"set the addon preference '{GATE}' and 'sketchfab.api_key'"
        return status
    try:
        me = request_json(url(_api(job), "me"), headers=_auth(job), timeout=10)
        status.update(key_works=True, username=me.get("username"))
    except (HTTPError, PermissionError) as exc:
        status.update(key_works=False, error="the API key was rejected" if getattr(exc, "status", None) == 401
                      else str(exc))
    return status


def _best_thumbnail(images: list[dict[str, Any]]) -> str | None:
    fitting = [i for i in images if 400 <= int(i.get("width", 0)) <= 800]
    pool = fitting or sorted(images, key=lambda i: abs(int(i.get("width", 0)) - 600))
    return pool[0]["url"] if pool else None


def search_sketchfab_models(query: str, job: Any, categories: str | None = None, count: int = 20,
                            downloadable: bool = True, cursor: str | None = None) -> dict[str, Any]:
    body = request_json(url(_api(job), "search", type="models", q=query, count=count, categories=categories,
                            downloadable="true" if downloadable else None, cursor=cursor), headers=_auth(job))
    models = [{
        "uid": r.get("uid"), "name": r.get("name"), "author": (r.get("user") or {}).get("username"),
        "license": (r.get("license") or {}).get("label"), "face_count": r.get("faceCount"),
        "downloadable": r.get("isDownloadable"),
        "thumbnail_url": _best_thumbnail((r.get("thumbnails") or {}).get("images", [])),
    } for r in body.get("results", [])]
    return {"models": models, "next_cursor": (body.get("cursors") or {}).get("next")}
