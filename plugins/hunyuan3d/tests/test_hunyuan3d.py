"""Hunyuan3D against loopback fakes of Tencent Cloud's ai3d API and of a Hunyuan3D-2 api_server.py,
importing real models made by bpy (a GLB, and an OBJ in a zip) into a real Blender peer.

The Tencent fake checks every request's TC3-HMAC-SHA256 signature the way the service documents
it, written out here step by step and independently of the plugin's code, and answers a bad one
the way Tencent does: HTTP 200 with `Response.Error.Code = AuthFailure.SignatureFailure`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import zipfile
from pathlib import Path
from types import SimpleNamespace

import pytest

from blendbus import protocol as p
from blendbus.testing.blender import make_model
from blendbus.testing.fakehttp import Response, fake_api

pytestmark = pytest.mark.anyio
SECRET_ID, SECRET_KEY = "AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE", "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE"
PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 64



@pytest.fixture(scope="module")
def assets(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("hunyuan-assets")
    make_model(out, "Model", "glb", "obj", size=2.0)
    with zipfile.ZipFile(out / "obj.zip", "w") as zf:
        for name in ("model.obj", "model.mtl"):
            if (out / name).exists():
                zf.write(out / name, f"result/{name}")
    (out / "refs").mkdir()
    (out / "refs" / "chair.png").write_bytes(PNG)
    return out


def expected_authorization(req, secret_key: str) -> str:
    """TC3-HMAC-SHA256 as Tencent Cloud API 3.0 documents it."""
    headers = {k.lower(): v for k, v in req.headers.items()}
    timestamp = int(headers["x-tc-timestamp"])
    date = time.strftime("%Y-%m-%d", time.gmtime(timestamp))
    canonical_request = "\n".join([
        "POST", "/", "",
        f"content-type:{headers['content-type']}\nhost:{headers['host']}\nx-tc-action:{headers['x-tc-action'].lower()}\n",
        "content-type;host;x-tc-action",
        hashlib.sha256(req.body).hexdigest(),
    ])
    scope = f"{date}/ai3d/tc3_request"
    string_to_sign = f"TC3-HMAC-SHA256\n{timestamp}\n{scope}\n{hashlib.sha256(canonical_request.encode()).hexdigest()}"

    def step(key: bytes, msg: str) -> bytes:
        return hmac.new(key, msg.encode(), hashlib.sha256).digest()

    signing_key = step(step(step(f"TC3{secret_key}".encode(), date), "ai3d"), "tc3_request")
    signature = hmac.new(signing_key, string_to_sign.encode(), hashlib.sha256).hexdigest()
    return (f"TC3-HMAC-SHA256 Credential={SECRET_ID}/{scope}, SignedHeaders=content-type;host;x-tc-action,"
            f" Signature={signature}")


class Tencent:
    """The ai3d API: a job advances one state per query; `legacy` nests files the older way."""

    def __init__(self, assets: Path) -> None:
        self.assets, self.base, self.submitted, self.queries = assets, "", [], 0
        self.legacy = False

    def api(self, req):
        headers = {k.lower(): v for k, v in req.headers.items()}
        assert headers["content-type"] == "application/json; charset=utf-8"
        assert headers["x-tc-version"] == "2025-05-13" and headers["x-tc-region"] == "ap-guangzhou"
        request_id = "8f3a-request"
        if headers.get("authorization") != expected_authorization(req, SECRET_KEY):
            return Response(body={"Response": {"Error": {"Code": "AuthFailure.SignatureFailure", "Message":
                            "The provided credentials could not be validated."}, "RequestId": request_id}})
        action, body = headers["x-tc-action"], json.loads(req.body)
        if action.startswith("Submit"):
            self.submitted.append((action, body))
            return Response(body={"Response": {"JobId": "1357924680", "RequestId": request_id}})
        self.queries += 1
        state = ["WAIT", "RUN", "DONE"][min(self.queries - 1, 2)]
        answer = {"Status": state, "ErrorCode": "", "ErrorMessage": "", "RequestId": request_id}
        if state == "DONE":
            files = ([{"Type": "OBJ", "Url": f"{self.base}/cos/obj.zip?sign=q", "PreviewImageUrl": f"{self.base}/p.png"}]
                     if self.legacy else
                     [{"Type": "GIF", "Url": f"{self.base}/cos/x.gif", "PreviewImageUrl": ""},
                      {"Type": "GLB", "Url": f"{self.base}/cos/model.glb?sign=q", "PreviewImageUrl": f"{self.base}/p.png"}])
            answer["ResultFile3Ds"] = [{"File3D": files}] if self.legacy else files
        return Response(body={"Response": answer})

    def file(self, req):
        assert "authorization" not in {k.lower() for k in req.headers}, "a key went to the file host"
        return Response(body=(self.assets / req.path.rsplit("/", 1)[1]).read_bytes())


class Local:
    """A Hunyuan3D-2 api_server.py: done on the second status request."""

    def __init__(self, assets: Path) -> None:
        self.assets, self.sent, self.polls = assets, [], 0

    def send(self, req):
        self.sent.append(json.loads(req.body))
        return Response(body={"uid": "7c9e6679-7425-40de-944b-e07fc1f90ae7"})

    def status(self, req):
        self.polls += 1
        if self.polls < 2:
            return Response(body={"status": "processing"})
        return Response(body={"status": "completed",
                              "model_base64": base64.b64encode((self.assets / "model.glb").read_bytes()).decode()})


@pytest.fixture
def fake(assets, request):
    tencent, local = Tencent(assets), Local(assets)
    table = {("POST", "/"): tencent.api, ("GET", "/cos/model.glb"): tencent.file, ("GET", "/cos/obj.zip"): tencent.file,
             ("POST", "/local/send"): local.send,
             ("GET", "/local/status/7c9e6679-7425-40de-944b-e07fc1f90ae7"): local.status}
    with fake_api(table) as (base, seen):
        tencent.base = base
        request.node.fake_url = base
        yield SimpleNamespace(tencent=tencent, local=local, seen=seen)


@pytest.fixture
def blendbus_peer_settings(request, assets) -> list[str]:
    mode, secret = getattr(request, "param", ("OFFICIAL_API", SECRET_KEY))
    base = request.node.fake_url
    return ["allow_code_execution=true", "hunyuan3d.enabled=true", f"hunyuan3d.mode={mode}",
            f"hunyuan3d.secret_id={SECRET_ID}", f"hunyuan3d.secret_key={secret}", f"hunyuan3d.api_url={base}",
            f"hunyuan3d.local_url={base}/local", "hunyuan3d.poll_interval_s=0.05", f"output_dir={assets}"]


async def test_text_to_model_signed_polled_and_imported(fake, blendbus_bpy_client, blendbus_call):
    client, call = blendbus_bpy_client, blendbus_call
    started = await call(client, "blender_generate_hunyuan3d_model", {"text_prompt": "a wooden chair",
                                                                      "enable_pbr": True, "face_count": 40000})
    assert started["status"] == p.COMPLETED, started["error"]
    assert started["result"] == {"job_id": "1357924680", "mode": "OFFICIAL_API", "edition": "pro", "status": "WAIT"}
    assert fake.tencent.submitted == [("SubmitHunyuanTo3DProJob", {"ResultFormat": "GLB", "EnablePBR": True,
                                                                   "Prompt": "a wooden chair", "FaceCount": 40000})]
    seen = []
    for _ in range(3):
        polled = await call(client, "blender_poll_hunyuan_job_status", {"job_id": "1357924680"})
        seen.append((polled["result"]["status"], polled["result"]["status_text"]))
    assert seen == [("WAIT", "waiting in Tencent's queue"), ("RUN", "generating"), ("DONE", "done")]
    assert polled["result"]["preview_url"] == f"{fake.tencent.base}/p.png"
    env = await call(client, "blender_import_generated_asset_hunyuan", {"name": "Chair", "job_id": "1357924680",
                                                                       "target_size": 1.0})
    assert env["status"] == p.COMPLETED, env["error"]
    assert env["result"]["object"] == "Chair" and max(env["result"]["dimensions"]) == pytest.approx(1.0, abs=1e-3)
    assert SECRET_KEY not in json.dumps([started, polled, env])


async def test_the_older_nested_answer_with_an_obj_in_a_zip_imports(fake, blendbus_bpy_client, blendbus_call):
    fake.tencent.legacy, fake.tencent.queries = True, 2
    env = await blendbus_call(blendbus_bpy_client, "blender_import_generated_asset_hunyuan",
                              {"name": "FromObj", "job_id": "1357924680"})
    assert env["status"] == p.COMPLETED, env["error"]
    assert env["result"]["object"] == "FromObj" and env["result"]["type"] == "MESH"


async def test_inputs_are_one_of_three_and_images_come_from_the_output_folder(fake, blendbus_bpy_client,
                                                                              blendbus_call):
    client, call = blendbus_bpy_client, blendbus_call
    both = await call(client, "blender_generate_hunyuan3d_model", {"text_prompt": "x", "input_image_url": "https://a/b.png"})
    assert both["status"] == p.INVALID and "pass exactly one of text_prompt, input_image_url, input_image_path" in both["error"]
    outside = await call(client, "blender_generate_hunyuan3d_model", {"input_image_path": "/etc/hostname"})
    assert outside["status"] == p.FAILED and "outside this peer's output folder" in outside["error"]
    env = await call(client, "blender_generate_hunyuan3d_model", {"input_image_path": "refs/chair.png"})
    assert env["status"] == p.COMPLETED, env["error"]
    action, body = fake.tencent.submitted[-1]
    assert base64.b64decode(body["ImageBase64"]) == PNG and "Prompt" not in body


@pytest.mark.parametrize("blendbus_peer_settings", [("OFFICIAL_API", "not-the-secret")], indirect=True)
async def test_a_bad_signature_is_named_by_tencents_code(fake, blendbus_bpy_client, blendbus_call):
    env = await blendbus_call(blendbus_bpy_client, "blender_generate_hunyuan3d_model", {"text_prompt": "a cup"})
    assert env["status"] == p.FAILED and "AuthFailure.SignatureFailure" in env["error"]
    assert "not-the-secret" not in json.dumps(env)
    status = await blendbus_call(blendbus_bpy_client, "blender_get_hunyuan3d_status")
    assert status["result"]["keys_set"] is True and "not-the-secret" not in json.dumps(status)


@pytest.mark.parametrize("blendbus_peer_settings", [("LOCAL_API", "")], indirect=True)
async def test_a_local_server_generates_waits_and_imports_in_one_call(fake, blendbus_bpy_client, blendbus_call):
    progress = []

    async def on_progress(done, total, message):
        progress.append(message)

    result = await blendbus_bpy_client.call_tool("blender_generate_hunyuan3d_model", {
        "text_prompt": "a lamp", "wait_and_import_as": "Lamp"}, progress_callback=on_progress)
    env = result.structured_content
    assert env["status"] == p.COMPLETED, env["error"]
    assert env["result"]["job_id"] == "7c9e6679-7425-40de-944b-e07fc1f90ae7" and env["result"]["imported"]["object"] == "Lamp"
    assert fake.local.sent == [{"texture": False, "type": "glb", "text": "a lamp"}]
    assert any("generating" in (m or "") for m in progress)
