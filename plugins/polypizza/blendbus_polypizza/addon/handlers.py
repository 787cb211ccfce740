"""Poly Pizza handlers: run inside Blender. Standard library, bpy and blendbus_addon only.

The API wants Capitalised, numeric query parameters (it ignores lowercase ones without a word);
models come as GLB files from a separate static host that takes no key and may refuse datacenter
addresses with an HTML challenge page, which must never reach the glTF importer.
"""

from __future__ import annotations

import shutil
import tempfile
import urllib.parse
from pathlib import Path
from typing import Any

from blendbus.suggest import did_you_mean
from blendbus_addon.http import HTTPError, download, request_json, url
from blendbus_addon.imports import GLB_MAGIC, import_model

from . import CATEGORIES, LICENSES, SERVICE


def _api(job: Any) -> str:
    return str(job.setting(SERVICE.key("api_url")))


def _timeout(job: Any) -> float:
    return float(job.setting(SERVICE.key("timeout_s")))


def _call(job: Any, path: str, **query: Any) -> Any:
    key = job.setting(SERVICE.key("api_key"))
    if not key:
        raise PermissionError("no Poly Pizza API key: set the addon preference 'polypizza.api_key'")
    try:
        return request_json(url(_api(job), path, **query), headers={"x-auth-token": key}, timeout=_timeout(job))
    except HTTPError as exc:
        if exc.status in (401, 403):
            raise PermissionError(f"Poly Pizza rejected the API key (HTTP {exc.status}): check"
                                  " 'polypizza.api_key'") from None
        if exc.status == 404:
            raise LookupError(f"Poly Pizza has no such model or page ({exc})") from None
        raise


def get_polypizza_status(job: Any) -> dict[str, Any]:
    def probe() -> dict[str, Any]:
        _call(job, "search/chair", Limit=1)
        return {}

    return SERVICE.status(job, api_url=_api(job), check=probe)


def _model(raw: dict[str, Any]) -> dict[str, Any]:
    tris = raw.get("Tri Count")
    return {
        "id": raw.get("ID"), "title": raw.get("Title"), "creator": (raw.get("Creator") or {}).get("Username"),
        "licence": raw.get("Licence"), "attribution": raw.get("Attribution"),
        "tri_count": tris if isinstance(tris, int) and tris > 0 else "unknown",
        "category": raw.get("Category"), "animated": bool(raw.get("Animated")), "thumbnail": raw.get("Thumbnail"),
    }


def _search(job: Any, query: str, category: str | None, license: str | None, animated: bool | None, limit: int,
            page: int) -> dict[str, Any]:
    filters: dict[str, Any] = {"Limit": limit, "Page": page}
    if category is not None:
        index = {c.lower(): i for i, c in enumerate(CATEGORIES)}.get(category.strip().lower())
        if index is None:
            raise ValueError(f"unknown category {category!r}{did_you_mean(category, CATEGORIES)};"
                             f" categories: {', '.join(CATEGORIES)}")
        filters["Category"] = index
    if license is not None:
        filters["License"] = LICENSES[license]
    if animated:
        filters["Animated"] = 1
    body = _call(job, "search/" + urllib.parse.quote(query, safe=""), **filters)
    results = [_model(r) for r in body.get("results") or []]
    total = int(body.get("total") or 0)
    more = (page + 1) * limit < total
    return {"models": results, "total": total, "page": page, "next_page": page + 1 if more else None}


def search_polypizza_models(query: str, job: Any, category: str | None = None, license: str | None = None,
                            animated: bool | None = None, limit: int = 16, page: int = 0) -> Any:
    return (yield job.background(_search, job, query, category, license, animated, limit, page))


def _fetch(job: Any, model_id: str) -> dict[str, Any]:
    model = _call(job, "model/" + model_id)
    link = model.get("Download")
    if not isinstance(link, str) or urllib.parse.urlsplit(link).scheme not in ("http", "https"):
        raise LookupError(f"Poly Pizza lists no download for model {model_id}")
    folder = Path(tempfile.mkdtemp(prefix=f"blendbus-polypizza-{model_id}-"))
    try:
        def report(done: int, total: int | None) -> None:
            if total:
                job.progress(done / total, f"downloading {model_id}")

        try:  # a static host of its own: the API key is never sent there
            glb = download(link, folder / "model.glb", timeout=_timeout(job), progress=report)
        except HTTPError as exc:
            if exc.status == 403:
                raise PermissionError(_REFUSED.format(id=model_id, why="HTTP 403")) from None
            raise
        with open(glb, "rb") as fh:
            if fh.read(4) != GLB_MAGIC:
                raise PermissionError(_REFUSED.format(id=model_id, why="it sent a web page, not a GLB model"))
        return {"folder": str(folder), "glb": str(glb), "model": _model(model)}
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise


_REFUSED = ("Poly Pizza's download host refused this machine for model {id} ({why}): it challenges some"
            " datacenter and VPN addresses. Nothing was imported; try from another network, or download the"
            " model in a browser and import the file.")


def download_polypizza_model(model_id: str, job: Any, target_size: float | None = None) -> Any:
    fetched = yield job.background(_fetch, job, model_id)
    info = fetched["model"]
    try:
        imported = import_model(Path(fetched["glb"]), name=info["title"] or model_id, target_size=target_size, tags={
            "polypizza_id": model_id, "polypizza_licence": info["licence"] or "",
            "polypizza_attribution": info["attribution"] or ""})
    finally:
        shutil.rmtree(fetched["folder"], ignore_errors=True)
    return {"id": model_id, "title": info["title"], "licence": info["licence"], "attribution": info["attribution"],
            "attribution_required": str(info["licence"] or "").upper().startswith("CC-BY"), **imported}
