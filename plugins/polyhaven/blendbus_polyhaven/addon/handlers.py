"""Poly Haven handlers: run inside Blender (stdlib + bpy + the blendbus addon's HTTP helper)."""

from __future__ import annotations

from typing import Any

from blendbus_addon.http import request_json, url

GATE = "polyhaven.enabled"


def _api(job: Any) -> str:
    return str(job.setting("polyhaven.api_url") or "https://api.polyhaven.com")


def get_polyhaven_status(job: Any) -> dict[str, Any]:
    enabled = job.setting(GATE) is True
    status = {"enabled": enabled, "api_url": _api(job)}
    if not enabled:
        status["how_to_enable"] = (f"set the addon preference '{GATE}' (Preferences > Add-ons > blendbus, or"
                                   f" `blendbus peer --set {GATE}=true`)")
    return status


def get_polyhaven_categories(asset_type: str, job: Any) -> dict[str, Any]:
    counts = request_json(url(_api(job), f"categories/{asset_type}"))
    return {"asset_type": asset_type, "categories": dict(sorted(counts.items(), key=lambda kv: -kv[1]))}


_TYPE_CODES = {0: "hdris", 1: "textures", 2: "models"}


def search_polyhaven_assets(job: Any, asset_type: str = "all", categories: str | None = None,
                            query: str | None = None, limit: int = 20, offset: int = 0) -> dict[str, Any]:
    assets = request_json(url(_api(job), "assets", type=asset_type, categories=categories))
    words = [w.lower() for w in (query or "").split() if w]
    found = []
    for asset_id, meta in assets.items():
        text = " ".join([asset_id, meta.get("name", ""), *meta.get("tags", []), *meta.get("categories", [])]).lower()
        if all(w in text for w in words):
            found.append((asset_id, meta))
    found.sort(key=lambda item: -int(item[1].get("download_count", 0)))
    page = found[offset:offset + limit]
    return {
        "total": len(found),
        "offset": offset,
        "next_offset": offset + limit if offset + limit < len(found) else None,
        "assets": [{"id": asset_id, "name": meta.get("name", asset_id),
                    "type": _TYPE_CODES.get(meta.get("type"), meta.get("type")),
                    "categories": meta.get("categories", []), "tags": meta.get("tags", []),
                    "download_count": meta.get("download_count", 0),
                    "max_resolution": meta.get("max_resolution")} for asset_id, meta in page],
    }
