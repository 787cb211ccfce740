"""Hunyuan3D handlers: run inside Blender. Standard library, bpy and blendbus_addon only.

Two services behind one tool surface: Tencent Cloud's ai3d API (OFFICIAL_API, signed requests,
`JobId`) and a Hunyuan3D-2 `api_server.py` (LOCAL_API, `uid`). Network work runs off Blender's
main thread; the import runs on it.
"""

from __future__ import annotations

import base64
import shutil
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

from blendbus_addon.archives import safe_extract
from blendbus_addon.http import HTTPError, download, request_json
from blendbus_addon.imports import MODEL_SUFFIXES, import_model

from . import EDITIONS, LOCAL_API, OFFICIAL_API, SERVICE, STATES
from . import tencent

MAX_IMAGE_BYTES = 8 * 1024 * 1024
"""Tencent takes images up to 8 MB (base64 adds a third on the wire)."""
IMPORT_ORDER = ("GLB", "OBJ", "FBX")
"""Which of a job's files to import, best first."""
LOCAL_STATES = {"processing": "RUN", "completed": "DONE", "error": "FAIL", "failed": "FAIL"}
"""A Hunyuan3D-2 api_server's states, in Tencent's words."""


class Settings:
    def __init__(self, job: Any) -> None:
        self.mode = job.setting(SERVICE.key("mode"))
        self.edition = job.setting(SERVICE.key("edition"))
        self.api = str(job.setting(SERVICE.key("api_url")))
        self.region = str(job.setting(SERVICE.key("region")))
        self.local = str(job.setting(SERVICE.key("local_url"))).rstrip("/")
        self.timeout = float(job.setting(SERVICE.key("timeout_s")))
        self.poll_every = float(job.setting(SERVICE.key("poll_interval_s")))
        self._secret_id = job.setting(SERVICE.key("secret_id"))
        self._secret_key = job.setting(SERVICE.key("secret_key"))

    def tencent(self, verb: str, payload: dict[str, Any]) -> dict[str, Any]:
        action = f"{verb}HunyuanTo3D{EDITIONS[self.edition]}Job"
        return tencent.call(self.api, action, payload, secret_id=self._secret_id, secret_key=self._secret_key,
                            region=self.region, timeout=self.timeout)


def get_hunyuan3d_status(job: Any) -> dict[str, Any]:
    s = Settings(job)
    facts = dict(edition=s.edition, region=s.region, api_url=s.api) if s.mode == OFFICIAL_API else dict(local_url=s.local)
    return SERVICE.status(job, also=(SERVICE.key("mode"),), mode=s.mode, **facts)


# ---- starting a generation ----------------------------------------------------------------------
def _submit(s: Settings, prompt: str | None, image_url: str | None, image: bytes | None, result_format: str,
            enable_pbr: bool, face_count: int | None) -> dict[str, Any]:
    if s.mode == LOCAL_API:
        if image_url:
            raise ValueError("LOCAL_API mode takes text_prompt or input_image_path; an image URL needs OFFICIAL_API")
        body: dict[str, Any] = {"texture": enable_pbr, "type": result_format.lower()}
        body.update({"text": prompt} if prompt else {"image": base64.b64encode(image or b"").decode()})
        if face_count:
            body["face_count"] = face_count
        answer = _local(s, "send", body)
        uid = str(answer.get("uid") or "")
        if not uid:
            raise RuntimeError(f"the Hunyuan3D server answered without a uid: {str(answer)[:200]}")
        return {"job_id": uid, "mode": LOCAL_API, "status": "RUN"}
    if face_count and s.edition != "pro":
        raise ValueError(f"face_count needs the pro edition; 'hunyuan3d.edition' is {s.edition}")
    payload: dict[str, Any] = {"ResultFormat": result_format, "EnablePBR": enable_pbr}
    if prompt:
        payload["Prompt"] = prompt
    elif image_url:
        payload["ImageUrl"] = image_url
    else:
        payload["ImageBase64"] = base64.b64encode(image or b"").decode()
    if face_count:
        payload["FaceCount"] = face_count
    answer = s.tencent("Submit", payload)
    return {"job_id": answer.get("JobId"), "mode": OFFICIAL_API, "edition": s.edition, "status": "WAIT"}


def _local(s: Settings, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    try:
        return request_json(f"{s.local}/{path}", method="POST" if body is not None else "GET", body=body,
                            timeout=s.timeout)
    except HTTPError as exc:
        if exc.status is None:
            raise HTTPError(f"no Hunyuan3D server answers at {s.local} ({exc}); start api_server.py or fix"
                            " 'hunyuan3d.local_url'") from None
        raise


def generate_hunyuan3d_model(job: Any, text_prompt: str | None = None, input_image_url: str | None = None,
                             input_image_path: str | None = None, result_format: str = "GLB",
                             enable_pbr: bool = False, face_count: int | None = None,
                             wait_and_import_as: str | None = None) -> Any:
    s = Settings(job)
    # Only an image inside the peer's output folder is uploaded (paths.py): never any other local file.
    image = job.outputs.input(input_image_path, max_bytes=MAX_IMAGE_BYTES)[1] if input_image_path else None
    started = yield job.background(_submit, s, text_prompt, input_image_url, image, result_format, enable_pbr,
                                   face_count)
    if not wait_and_import_as:
        return started
    yield job.background(_wait, job, s, started["job_id"])
    imported = yield from _import(job, s, started["job_id"], wait_and_import_as, None)
    return {**started, "status": "DONE", "imported": imported}


# ---- following it -------------------------------------------------------------------------------
def _status(s: Settings, job_id: str) -> dict[str, Any]:
    """{status: WAIT|RUN|DONE|FAIL, status_text, files: [{type, url, preview_url}], error?}."""
    if s.mode == LOCAL_API:
        answer = _local(s, f"status/{job_id}")
        state = LOCAL_STATES.get(str(answer.get("status")), "RUN")
        out = {"status": state, "status_text": STATES[state],
               "files": [{"type": "GLB", "url": None, "preview_url": None}] if state == "DONE" else [],
               "_model_base64": answer.get("model_base64") if state == "DONE" else None}
        if state == "FAIL":
            out["error"] = str(answer.get("message") or answer.get("error") or "the server gave no reason")
        return out
    answer = s.tencent("Query", {"JobId": job_id})
    state = str(answer.get("Status") or "WAIT")
    raw = answer.get("ResultFile3Ds")
    flat: list[Any] = []
    for entry in raw if isinstance(raw, list) else []:
        if isinstance(entry, dict):  # ai3d lists files flat; the older `hunyuan` service nested them
            flat.extend(entry["File3D"] if isinstance(entry.get("File3D"), list) else [entry])
    files = [{"type": str(f.get("Type", "")).upper(), "url": f.get("Url"), "preview_url": f.get("PreviewImageUrl")}
             for f in flat if isinstance(f, dict)]
    out: dict[str, Any] = {"status": state, "status_text": STATES.get(state, state.lower()), "files": files}
    if state == "FAIL":
        out["error"] = f"{answer.get('ErrorCode') or 'Failed'}: {answer.get('ErrorMessage') or 'no reason given'}"
    return out


def poll_hunyuan_job_status(job_id: str, job: Any) -> Any:
    state = yield job.background(_status, Settings(job), job_id)
    state.pop("_model_base64", None)
    previews = [f["preview_url"] for f in state["files"] if f.get("preview_url")]
    return {"job_id": job_id, **state, "preview_url": previews[0] if previews else None}


def _wait(job: Any, s: Settings, job_id: str) -> dict[str, Any]:
    started = time.monotonic()
    while True:
        state = _status(s, job_id)
        if state["status"] == "DONE":
            return state
        if state["status"] == "FAIL":
            raise RuntimeError(f"Hunyuan3D generation {job_id} failed ({state.get('error')})")
        if job.cancelled:
            raise RuntimeError(f"cancelled while waiting for Hunyuan3D; job {job_id} may still finish on its side")
        job.progress(None, f"Hunyuan3D: {state['status_text']} ({time.monotonic() - started:.0f}s)")
        time.sleep(s.poll_every)


# ---- importing the result ------------------------------------------------------------------------
def _fetch(s: Settings, job_id: str, folder: Path) -> Path:
    state = _status(s, job_id)
    if state["status"] != "DONE":
        raise LookupError(f"job {job_id} is {state['status_text']}, not done: poll it with poll_hunyuan_job_status")
    if s.mode == LOCAL_API:
        model = folder / "model.glb"
        model.write_bytes(base64.b64decode(state["_model_base64"] or ""))
        return model
    ranked = sorted((f for f in state["files"] if f["type"] in IMPORT_ORDER and f.get("url")),
                    key=lambda f: IMPORT_ORDER.index(f["type"]))
    if not ranked:
        kinds = ", ".join(sorted({f["type"] for f in state["files"]})) or "none"
        raise LookupError(f"job {job_id} has no file Blender imports (it has: {kinds}); generate with"
                          " result_format GLB")
    chosen = ranked[0]
    fetched = download(chosen["url"], folder / "download", timeout=s.timeout)  # a pre-signed URL: no keys sent
    if zipfile.is_zipfile(fetched):
        files = safe_extract(fetched, folder / "unpacked")
        models = sorted((f for f in files if f.suffix.lower() in MODEL_SUFFIXES), key=lambda f: len(f.parts))
        if not models:
            raise ValueError(f"the archive of job {job_id} holds no {'/'.join(MODEL_SUFFIXES)} file")
        return models[0]
    return fetched.rename(folder / f"model.{chosen['type'].lower()}")


def _import(job: Any, s: Settings, job_id: str, name: str, target_size: float | None) -> Any:
    folder = Path(tempfile.mkdtemp(prefix="blendbus-hunyuan3d-"))
    try:
        model = yield job.background(_fetch, s, job_id, folder)
        return import_model(model, name=name, target_size=target_size, tags={"hunyuan3d_job_id": job_id}, folder=folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def import_generated_asset_hunyuan(name: str, job_id: str, job: Any, target_size: float | None = None) -> Any:
    return (yield from _import(job, Settings(job), job_id, name, target_size))
