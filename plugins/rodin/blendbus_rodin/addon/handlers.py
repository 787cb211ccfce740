"""Hyper3D Rodin handlers: run inside Blender. The API key never appears in results or errors."""

from __future__ import annotations

from typing import Any

GATE = "rodin.enabled"


def get_hyper3d_status(job: Any) -> dict[str, Any]:
    enabled = job.setting(GATE) is True
    mode = job.setting("rodin.mode") or "MAIN_SITE"
    status: dict[str, Any] = {"enabled": enabled, "mode": mode, "key_set": bool(job.setting("rodin.api_key"))}
    if not enabled:
        status["how_to_enable"] = f"set the addon preference '{GATE}', 'rodin.mode' and 'rodin.api_key'"
    return status
