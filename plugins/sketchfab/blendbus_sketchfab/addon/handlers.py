"""Sketchfab handlers: run inside Blender. The API key never appears in results or errors.

Network work runs on a worker thread (`yield job.background(...)`); importing and scaling run on
the main thread, and a failed import removes whatever it had created.
"""

from __future__ import annotations

import base64
import hashlib
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from blendbus.protocol import IMAGES_KEY
from blendbus_addon.archives import safe_extract
from blendbus_addon.http import HTTPError, download, request_json, url
from blendbus_addon.imports import import_model

from . import SERVICE

STATUS_TTL_S = 60.0
_status_cache: dict[str, tuple[float, dict[str, Any]]] = {}
_status_lock = threading.Lock()


def _api(job: Any) -> str:
    return str(job.setting(SERVICE.key("api_url")))


def _timeout(job: Any) -> float:
    return float(job.setting(SERVICE.key("timeout_s")))


def _auth(job: Any) -> dict[str, str]:
    key = job.setting(SERVICE.key("api_key"))
    if not key:
        raise PermissionError("no Sketchfab API key: set the addon preference 'sketchfab.api_key'")
    return {"Authorization": f"Token {key}"}


def _explain(exc: HTTPError, uid: str | None = None) -> Exception:
    if exc.status == 401:
        return PermissionError("Sketchfab rejected the API key (HTTP 401): check 'sketchfab.api_key'")
    if exc.status in (403, 404) and uid:
        return LookupError(f"model {uid} is not downloadable (HTTP {exc.status}): pick one with downloadable=true")
    return exc


def get_sketchfab_status(job: Any) -> dict[str, Any]:
    return SERVICE.status(job, api_url=_api(job), check=lambda: _key_checked(job))


def _key_checked(job: Any) -> dict[str, Any]:
    """Whether the key works, asked of Sketchfab at most once a minute per key and URL (`cached` says which)."""
    key = str(job.setting(SERVICE.key("api_key")))
    cache_key = _api(job) + "|" + hashlib.sha256(key.encode()).hexdigest()
    with _status_lock:
        cached = _status_cache.get(cache_key)
    if cached and time.monotonic() - cached[0] < STATUS_TTL_S:
        return {**cached[1], "cached": True}
    try:
        me = request_json(url(_api(job), "me"), headers=_auth(job), timeout=min(10.0, _timeout(job)))
        checked = {"key_works": True, "username": me.get("username")}
    except (HTTPError, PermissionError) as exc:
        explained = _explain(exc) if isinstance(exc, HTTPError) else exc
        checked = {"key_works": False, "error": str(explained)}
    with _status_lock:
        _status_cache[cache_key] = (time.monotonic(), checked)
    return {**checked, "cached": False}


def _best_thumbnail(images: list[dict[str, Any]]) -> dict[str, Any] | None:
    fitting = [i for i in images if 400 <= int(i.get("width", 0)) <= 800]
    pool = sorted(fitting, key=lambda i: -int(i.get("width", 0))) or sorted(
        images, key=lambda i: abs(int(i.get("width", 0)) - 600))
    return pool[0] if pool else None


def search_sketchfab_models(query: str, job: Any, categories: str | None = None, count: int = 20,
                            downloadable: bool = True, cursor: str | None = None) -> dict[str, Any]:
    try:
        body = request_json(url(_api(job), "search", type="models", q=query, count=count, categories=categories,
                                downloadable="true" if downloadable else None, cursor=cursor),
                            headers=_auth(job), timeout=_timeout(job))
    except HTTPError as exc:
        raise _explain(exc) from None
    models = []
    for r in body.get("results", []):
        thumb = _best_thumbnail((r.get("thumbnails") or {}).get("images", []))
        models.append({
            "uid": r.get("uid"), "name": r.get("name"), "author": (r.get("user") or {}).get("username"),
            "license": (r.get("license") or {}).get("label"), "face_count": r.get("faceCount"),
            "downloadable": r.get("isDownloadable"), "thumbnail_url": thumb["url"] if thumb else None,
        })
    return {"models": models, "next_cursor": (body.get("cursors") or {}).get("next")}


def _fetch_preview(job: Any, uid: str) -> dict[str, Any]:
    try:
        model = request_json(url(_api(job), f"models/{uid}"), headers=_auth(job), timeout=_timeout(job))
    except HTTPError as exc:
        if exc.status == 404:
            raise LookupError(f"Sketchfab has no model {uid}") from None
        raise _explain(exc) from None
    thumb = _best_thumbnail((model.get("thumbnails") or {}).get("images", []))
    info = {"uid": uid, "name": model.get("name"), "author": (model.get("user") or {}).get("username"),
            "license": (model.get("license") or {}).get("label")}
    if thumb is None:
        return {**info, "thumbnail": None}
    with tempfile.TemporaryDirectory() as tmp:
        path = download(thumb["url"], Path(tmp) / "thumb", timeout=_timeout(job))
        data = path.read_bytes()
    mime = "image/png" if data[:8] == b"\x89PNG\r\n\x1a\n" else "image/jpeg"
    return {**info, "thumbnail": {"width": thumb.get("width"), "height": thumb.get("height")},
            IMAGES_KEY: [{"data": base64.b64encode(data).decode(), "mime_type": mime}]}


def get_sketchfab_model_preview(uid: str, job: Any) -> Any:
    return (yield job.background(_fetch_preview, job, uid))


def _fetch_archive(job: Any, uid: str) -> dict[str, Any]:
    try:
        links = request_json(url(_api(job), f"models/{uid}/download"), headers=_auth(job), timeout=_timeout(job))
    except HTTPError as exc:
        raise _explain(exc, uid) from None
    link = links.get("gltf") or {}
    if not link.get("url"):
        raise LookupError(f"model {uid} has no glTF download")
    folder = Path(tempfile.mkdtemp(prefix=f"blendbus-sketchfab-{uid}-"))
    try:
        archive = folder / "model.zip"

        def report(done: int, total: int | None) -> None:
            if total:
                job.progress(done / total, f"downloading {uid}")

        try:  # the link is pre-signed and short-lived: no Authorization header
            download(link["url"], archive, size=link.get("size"), timeout=_timeout(job), progress=report)
        except HTTPError as exc:
            if exc.status in (400, 403, 410):
                raise PermissionError(f"the download link for {uid} expired or was refused (HTTP {exc.status});"
                                      " call blender_download_sketchfab_model again for a fresh one") from None
            raise
        files = safe_extract(archive, folder / "unpacked")
        scenes = sorted((f for f in files if f.suffix.lower() in (".gltf", ".glb")), key=lambda f: (
            f.name != "scene.gltf", len(f.parts)))
        if not scenes:
            raise ValueError(f"the archive for {uid} holds no .gltf or .glb file")
        return {"folder": str(folder), "scene": str(scenes[0])}
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise


def download_sketchfab_model(uid: str, job: Any, target_size: float | None = None) -> Any:
    fetched = yield job.background(_fetch_archive, job, uid)
    try:
        imported = import_model(Path(fetched["scene"]), target_size=target_size, tags={"blendbus_sketchfab_uid": uid},
                                folder=Path(fetched["folder"]) / "unpacked")
    finally:
        shutil.rmtree(fetched["folder"], ignore_errors=True)
    return {"uid": uid, **imported}
