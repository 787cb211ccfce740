"""Hyper3D Rodin handlers: run inside Blender. The API key never appears in results or errors.

Two services: MAIN_SITE (hyperhuman.deemos.com, `Authorization: Bearer`) and FAL_AI (queue.fal.run,
`Authorization: Key`). Network work runs on a worker thread; only the import touches bpy.
"""

from __future__ import annotations

import json
import re
import secrets
import shutil
import tempfile
import time
import urllib.parse
from pathlib import Path
from typing import Any

from blendbus_addon.http import HTTPError, download, request_json
from blendbus_addon.imports import import_model

from . import FAL_AI, MAIN_SITE, SERVICE
MAIN_STATES = {"Waiting": "queued", "Generating": "generating", "Done": "done", "Failed": "failed",
               "Canceled": "failed"}
FAL_STATES = {"IN_QUEUE": "queued", "IN_PROGRESS": "generating", "COMPLETED": "done", "FAILED": "failed",
              "ERROR": "failed", "CANCELLED": "failed"}


class Settings:
    def __init__(self, job: Any) -> None:
        self.mode = job.setting(SERVICE.key("mode"))
        self.key = job.setting(SERVICE.key("api_key"))
        self.api = str(job.setting(SERVICE.key("api_url"))).rstrip("/")
        self.fal = str(job.setting(SERVICE.key("fal_url"))).rstrip("/")
        self.timeout = float(job.setting(SERVICE.key("timeout_s")))
        self.poll_every = float(job.setting(SERVICE.key("poll_interval_s")))
        self.tier = job.setting(SERVICE.key("tier"))

    def fal_urls(self, request_id: str, answer: dict[str, Any] | None = None) -> tuple[str, str]:
        """(status URL, result URL) of a fal request. fal serves both under the app id, without the
        `/rodin` sub-path of the submit URL; its submit answer names them, and those are used when
        they point at the configured host (the key is sent there, so never anywhere else)."""
        status, result = f"{self.fal}/requests/{request_id}/status", f"{self.fal}/requests/{request_id}"
        origin = _origin(self.fal)
        answer = answer or {}
        if isinstance(answer.get("status_url"), str) and _origin(answer["status_url"]) == origin:
            status = answer["status_url"]
        if isinstance(answer.get("response_url"), str) and _origin(answer["response_url"]) == origin:
            result = answer["response_url"]
        return status, result

    def headers(self) -> dict[str, str]:
        if not self.key:
            raise PermissionError("no Rodin API key: set the addon preference 'rodin.api_key'")
        return {"Authorization": f"Bearer {self.key}" if self.mode == MAIN_SITE else f"Key {self.key}"}

    def call(self, target: str, **kw: Any) -> Any:
        """An authenticated JSON request; a refused key is named as such (the key itself never is)."""
        try:
            return request_json(target, headers=self.headers(), timeout=self.timeout, **kw)
        except HTTPError as exc:
            if exc.status in (401, 403):
                raise PermissionError(f"Rodin rejected the API key (HTTP {exc.status}): check 'rodin.api_key'"
                                      " and 'rodin.mode'") from None
            raise


def get_hyper3d_status(job: Any) -> dict[str, Any]:
    return SERVICE.status(job, also=(SERVICE.key("mode"),), mode=job.setting(SERVICE.key("mode")))


def normalise_bbox(bbox: list[float] | None) -> list[int] | None:
    """Proportions as Rodin wants them: positive integers, the largest 100."""
    if bbox is None:
        return None
    if len(bbox) != 3 or any(not isinstance(v, int | float) or v <= 0 for v in bbox):
        raise ValueError("bbox_condition takes three positive numbers [x, y, z]")
    top = max(bbox)
    return [max(1, round(v / top * 100)) for v in bbox]


# ---- submitting --------------------------------------------------------------------------------
Image = tuple[Path, bytes, str]
"""An input image read from the output folder: (path, bytes, mime type)."""
MAX_IMAGE_BYTES = 32 * 1024 * 1024
def _multipart(fields: list[tuple[str, str]], files: list[tuple[str, Image]]) -> tuple[bytes, str]:
    boundary = "blendbus" + secrets.token_hex(12)
    parts = []
    for name, value in fields:
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode())
    for name, (path, data, mime) in files:
        head = (f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{path.name}"\r\n'
                f"Content-Type: {mime}\r\n\r\n").encode()
        parts.append(head + data + b"\r\n")
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def _submit(s: Settings, prompt: str | None, images: list[Image] | None, urls: list[str] | None,
            bbox: list[int] | None) -> dict[str, Any]:
    if s.mode == MAIN_SITE:
        if urls:
            raise ValueError("MAIN_SITE mode uploads image files: pass input_image_paths (files in the Blender"
                             " peer's output folder), or switch 'rodin.mode' to FAL_AI for input_image_urls")
        files = [("images", image) for image in images or []]
        fields = [("tier", s.tier)]
        if prompt:
            fields.append(("prompt", prompt))
        if bbox:
            fields.append(("bbox_condition", json.dumps(bbox)))
        body, ctype = _multipart(fields, files)
        answer = s.call(f"{s.api}/rodin", method="POST", data=body, content_type=ctype)
        jobs = answer.get("jobs") or {}
        return {"mode": MAIN_SITE, "task_uuid": answer.get("uuid"), "subscription_key": jobs.get("subscription_key"),
                "status": "queued"}
    payload: dict[str, Any] = {"tier": s.tier}
    if prompt:
        payload["prompt"] = prompt
    if urls:
        payload["input_image_urls"] = urls
    if bbox:
        payload["bbox_condition"] = bbox
    answer = s.call(f"{s.fal}/rodin", method="POST", body=payload)
    request_id = str(answer.get("request_id") or "")
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,200}", request_id):
        raise ValueError(f"fal.ai answered without a usable request_id: {str(answer)[:200]}")
    status_url, response_url = s.fal_urls(request_id, answer)
    return {"mode": FAL_AI, "request_id": request_id, "status": "queued", "status_url": status_url,
            "response_url": response_url}


def _origin(url: str) -> tuple[str, str]:
    parts = urllib.parse.urlsplit(url)
    return parts.scheme, parts.netloc


def _status(s: Settings, subscription_key: str | None, request_id: str | None,
            status_url: str | None = None) -> dict[str, Any]:
    if s.mode == MAIN_SITE:
        if not subscription_key:
            raise ValueError("MAIN_SITE mode polls by subscription_key (from the generate call)")
        answer = s.call(f"{s.api}/status", method="POST", body={"subscription_key": subscription_key})
        raw = [j.get("status") for j in answer.get("jobs", [])]
        states = {MAIN_STATES.get(r, "queued") for r in raw}
        status = ("failed" if "failed" in states else "done" if states == {"done"} else
                  "generating" if "generating" in states or "done" in states else "queued")
        return {"status": status, "raw": raw}
    if not request_id:
        raise ValueError("FAL_AI mode polls by request_id (from the generate call)")
    answer = s.call(status_url or s.fal_urls(request_id)[0])
    raw_state = answer.get("status")
    out = {"status": FAL_STATES.get(raw_state, "queued"), "raw": raw_state}
    if answer.get("queue_position") is not None:
        out["queue_position"] = answer["queue_position"]
    return out


def _fetch_glb(s: Settings, task_uuid: str | None, request_id: str | None, folder: Path,
               response_url: str | None = None) -> Path:
    if s.mode == MAIN_SITE:
        if not task_uuid:
            raise ValueError("MAIN_SITE mode imports by task_uuid (from the generate call)")
        answer = s.call(f"{s.api}/download", method="POST", body={"task_uuid": task_uuid})
        glbs = [item for item in answer.get("list", []) if str(item.get("name", "")).lower().endswith(".glb")]
        if not glbs:
            raise LookupError(f"task {task_uuid} has no .glb to download (is it done?)")
        link = glbs[0]["url"]
    else:
        if not request_id:
            raise ValueError("FAL_AI mode imports by request_id (from the generate call)")
        answer = s.call(response_url or s.fal_urls(request_id)[1])
        link = (answer.get("model_mesh") or {}).get("url")
        if not link:
            raise LookupError(f"request {request_id} has no model_mesh yet (is it COMPLETED?)")
    return download(link, folder / "model.glb", timeout=s.timeout)  # a pre-signed link: no key sent


def _wait(job: Any, s: Settings, subscription_key: str | None, request_id: str | None,
          status_url: str | None = None) -> dict[str, Any]:
    """Poll until done, reporting progress; the caller may cancel."""
    started = time.monotonic()
    while True:
        state = _status(s, subscription_key, request_id, status_url)
        if state["status"] == "done":
            return state
        if state["status"] == "failed":
            raise RuntimeError(f"Rodin generation failed ({state['raw']})")
        if job.cancelled:
            raise RuntimeError("cancelled while waiting for Rodin; the generation may still finish on its side")
        job.progress(None, f"Rodin: {state['status']} ({time.monotonic() - started:.0f}s)")
        time.sleep(s.poll_every)


# ---- tools ------------------------------------------------------------------------------------
def _generate(job: Any, prompt: str | None, paths: list[str] | None, urls: list[str] | None,
              bbox: list[float] | None, wait_and_import_as: str | None) -> Any:
    s = Settings(job)
    if paths and s.mode != MAIN_SITE:
        raise ValueError("FAL_AI mode takes image URLs: pass input_image_urls, or switch 'rodin.mode' to"
                         " MAIN_SITE to upload files")
    # Only images inside the peer's output folder are uploaded (paths.py): never any other local file.
    images = [job.outputs.input(raw, max_bytes=MAX_IMAGE_BYTES) for raw in paths or []]
    started = yield job.background(_submit, s, prompt, images, urls, normalise_bbox(bbox))
    if not wait_and_import_as:
        return started
    imported = yield from _import_when_done(job, s, wait_and_import_as, started.get("task_uuid"),
                                            started.get("request_id"), started.get("subscription_key"),
                                            started.get("status_url"), started.get("response_url"))
    return {**started, "status": "done", "imported": imported}


def generate_via_text(text_prompt: str, job: Any, bbox_condition: list[float] | None = None,
                      wait_and_import_as: str | None = None) -> Any:
    return (yield from _generate(job, text_prompt, None, None, bbox_condition, wait_and_import_as))


def generate_via_images(job: Any, input_image_paths: list[str] | None = None,
                        input_image_urls: list[str] | None = None, bbox_condition: list[float] | None = None,
                        wait_and_import_as: str | None = None) -> Any:
    if not input_image_paths and not input_image_urls:
        raise ValueError("pass input_image_paths (MAIN_SITE) or input_image_urls (FAL_AI)")
    return (yield from _generate(job, None, input_image_paths, input_image_urls, bbox_condition, wait_and_import_as))


def poll_job_status(job: Any, subscription_key: str | None = None, request_id: str | None = None) -> Any:
    return (yield job.background(_status, Settings(job), subscription_key, request_id))


def import_generated_asset(name: str, job: Any, task_uuid: str | None = None, request_id: str | None = None) -> Any:
    return (yield from _import_when_done(job, Settings(job), name, task_uuid, request_id, None))


def _import_when_done(job: Any, s: Settings, name: str, task_uuid: str | None, request_id: str | None,
                      subscription_key: str | None, status_url: str | None = None,
                      response_url: str | None = None) -> Any:
    if subscription_key or (s.mode == FAL_AI and request_id):
        yield job.background(_wait, job, s, subscription_key, request_id, status_url)
    folder = Path(tempfile.mkdtemp(prefix="blendbus-rodin-"))
    try:
        glb = yield job.background(_fetch_glb, s, task_uuid, request_id, folder, response_url)
        return import_model(glb, name=name)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
