"""Rodin generation in both modes against a loopback fake, importing a real GLB into real Blender.

The fake moves a job from queued to generating to done over successive polls, checks the auth
header of each mode (Bearer for the main site, Key for fal.ai) and serves a GLB made with bpy: a
mesh under an empty, the shape Rodin returns.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import anyio
import pytest

from blendbus import protocol as p
from blendbus.testing.blender import run_in_blender
from blendbus.testing.fakehttp import Response, fake_api

pytestmark = pytest.mark.anyio
KEY = "rodin-secret-key"

MAKE = r"""
import sys, bpy
out = sys.argv[1]
for o in list(bpy.data.objects):
    bpy.data.objects.remove(o)
bpy.ops.mesh.primitive_uv_sphere_add()
mesh = bpy.context.active_object
root = bpy.data.objects.new("world", None)
bpy.context.scene.collection.objects.link(root)
mesh.parent = root
bpy.ops.export_scene.gltf(filepath=f"{out}/model.glb", export_format="GLB")
img = bpy.data.images.new("ref", 4, 4)
img.filepath_raw, img.file_format = f"{out}/ref.png", "PNG"
img.save()
"""


@pytest.fixture(scope="module")
def assets(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("rodin-assets")
    run_in_blender(MAKE, str(out), workdir=out)
    return out


class Fake:
    """Both Rodin services; each job advances one state per status request."""

    def __init__(self, assets: Path, fail: bool = False, stuck: bool = False) -> None:
        self.assets, self.fail, self.stuck = assets, fail, stuck
        self.polls = 0
        self.submitted: list = []
        self.base = ""

    def state(self, states: list[str]) -> str:
        self.polls += 1
        if self.stuck:
            return states[0]
        if self.fail and self.polls >= 2:
            return states[-1]
        return states[min(self.polls, 2)]

    def routes(self) -> dict:
        def auth(scheme, handler):
            return lambda req: handler(req) if req.headers.get("Authorization") == f"{scheme} {KEY}" else \
                Response(401, {"detail": "bad key"})

        def rodin(req):
            self.submitted.append(req)
            return Response(body={"uuid": "task-1", "submit_time": "now",
                                  "jobs": {"subscription_key": "sub-1", "uuids": ["j1", "j2"]}})

        def status(req):
            assert json.loads(req.body) == {"subscription_key": "sub-1"}
            s = self.state(["Waiting", "Generating", "Done", "Failed"])
            return Response(body={"jobs": [{"uuid": "j1", "status": s}, {"uuid": "j2", "status": s}]})

        def download(req):
            assert json.loads(req.body) == {"task_uuid": "task-1"}
            return Response(body={"list": [{"name": "preview.webp", "url": f"{self.base}/files/x.webp"},
                                           {"name": "base_basic_pbr.glb", "url": f"{self.base}/files/model.glb"}]})

        def fal_submit(req):
            self.submitted.append(req)
            app = f"{self.base}/fal"  # as fal does: status and result live under the app id, not /rodin
            return Response(body={"request_id": "req-9", "status_url": f"{app}/requests/req-9/status",
                                  "response_url": f"{app}/requests/req-9"})

        def fal_status(req):
            return Response(body={"status": self.state(["IN_QUEUE", "IN_PROGRESS", "COMPLETED", "FAILED"]),
                                  "queue_position": 0})

        def fal_result(req):
            return Response(body={"model_mesh": {"url": f"{self.base}/files/model.glb", "file_size": 1}})

        return {
            ("POST", "/api/v2/rodin"): auth("Bearer", rodin),
            ("POST", "/api/v2/status"): auth("Bearer", status),
            ("POST", "/api/v2/download"): auth("Bearer", download),
            ("POST", "/fal/rodin"): auth("Key", fal_submit),
            ("GET", "/fal/requests/req-9/status"): auth("Key", fal_status),
            ("GET", "/fal/requests/req-9"): auth("Key", fal_result),
            ("GET", "/files/model.glb"): lambda req: Response(body=(self.assets / "model.glb").read_bytes()),
        }


@pytest.fixture
def fake(assets, request):
    service = Fake(assets, **(getattr(request, "param", None) or {}))
    with fake_api(service.routes()) as (base, _):
        service.base = base
        request.node.fake_url = base
        yield service


def settings(request, mode: str, key: str = KEY) -> list[str]:
    base = request.node.fake_url
    return ["allow_code_execution=true", "rodin.enabled=true", f"rodin.mode={mode}", f"rodin.api_key={key}",
            f"output_dir={request.getfixturevalue('assets')}",
            f"rodin.api_url={base}/api/v2", f"rodin.fal_url={base}/fal", "rodin.poll_interval_s=0.05"]


@pytest.fixture
def blendbus_peer_settings(request) -> list[str]:
    return settings(request, getattr(request, "param", "MAIN_SITE"))


async def test_main_site_text_poll_and_import(fake, blendbus_bpy_client, blendbus_call):
    client, call = blendbus_bpy_client, blendbus_call
    started = await call(client, "blender_generate_hyper3d_model_via_text",
                         {"text_prompt": "a red armchair", "bbox_condition": [1, 2, 0.5]})
    assert started["result"] == {"mode": "MAIN_SITE", "task_uuid": "task-1", "subscription_key": "sub-1",
                                 "status": "queued"}
    body = fake.submitted[0].body.decode()
    assert 'name="prompt"\r\n\r\na red armchair' in body and 'name="bbox_condition"\r\n\r\n[50, 100, 25]' in body
    seen = [(await call(client, "blender_poll_rodin_job_status", {"subscription_key": "sub-1"}))["result"]["status"]
            for _ in range(3)]
    assert seen == ["generating", "done", "done"]
    env = await call(client, "blender_import_generated_asset", {"name": "Armchair", "task_uuid": "task-1"})
    assert env["status"] == p.COMPLETED, env
    assert env["result"]["object"] == "Armchair" and env["result"]["type"] == "MESH"
    assert env["result"]["objects"] == ["Armchair"]  # the empty parent is gone, the mesh carries the name


async def test_main_site_uploads_image_files_and_refuses_urls(fake, blendbus_bpy_client, blendbus_call, assets):
    client, call = blendbus_bpy_client, blendbus_call
    env = await call(client, "blender_generate_hyper3d_model_via_images", {"input_image_paths": ["ref.png"]})
    assert env["status"] == p.COMPLETED
    assert b'name="images"; filename="ref.png"' in fake.submitted[0].body
    wrong = await call(client, "blender_generate_hyper3d_model_via_images", {"input_image_urls": ["http://x/a.png"]})
    assert wrong["status"] == p.FAILED and "input_image_paths" in wrong["error"]
    missing = await call(client, "blender_generate_hyper3d_model_via_images", {"input_image_paths": ["no-such.png"]})
    assert missing["status"] == p.FAILED and "does not exist in the output folder" in missing["error"]
    for outside in ("/etc/hostname", "../../../../etc/hostname", str(assets.parent)):  # no other local file
        refused = await call(client, "blender_generate_hyper3d_model_via_images", {"input_image_paths": [outside]})
        assert refused["status"] == p.FAILED and "outside this peer's output folder" in refused["error"]
    not_image = await call(client, "blender_generate_hyper3d_model_via_images", {"input_image_paths": ["model.glb"]})
    assert not_image["status"] == p.FAILED and "is not a" in not_image["error"]
    assert len(fake.submitted) == 1  # none of the refused files reached the service


@pytest.mark.parametrize("blendbus_peer_settings", ["FAL_AI"], indirect=True)
async def test_fal_generation_collected_later_through_the_job_store(fake, blendbus_bpy_client, blendbus_call):
    client, call = blendbus_bpy_client, blendbus_call
    env = await call(client, "blender_generate_hyper3d_model_via_text",
                     {"text_prompt": "a robot", "wait_and_import_as": "Robot", "timeout_s": 0.05})
    assert env["status"] == p.TIMEOUT  # the LLM is not held; the work goes on in Blender
    done = await call(client, "blender_get_job", {"job_id": env["job_id"], "wait_s": 30})
    assert done["status"] == p.COMPLETED, done
    assert done["result"]["request_id"] == "req-9" and done["result"]["imported"]["object"] == "Robot"
    assert done["result"]["status_url"] == f"{fake.base}/fal/requests/req-9/status"
    assert json.loads(fake.submitted[0].body) == {"tier": "Regular", "prompt": "a robot"}
    wrong = await call(client, "blender_generate_hyper3d_model_via_images", {"input_image_paths": ["/tmp/a.png"]})
    assert wrong["status"] == p.FAILED and "input_image_urls" in wrong["error"]
    urls = await call(client, "blender_generate_hyper3d_model_via_images", {"input_image_urls": ["http://x/a.png"]})
    assert urls["status"] == p.COMPLETED and json.loads(fake.submitted[-1].body)["input_image_urls"] == ["http://x/a.png"]


@pytest.mark.parametrize("fake", [{"fail": True}], indirect=True)
async def test_a_failed_generation_is_reported(fake, blendbus_bpy_client, blendbus_call):
    env = await blendbus_call(blendbus_bpy_client, "blender_generate_hyper3d_model_via_text",
                              {"text_prompt": "x", "wait_and_import_as": "X"})
    assert env["status"] == p.FAILED and "generation failed" in env["error"]


@pytest.mark.parametrize("fake", [{"stuck": True}], indirect=True)
async def test_cancelling_the_call_stops_the_waiting(fake, blendbus_bpy_client, blendbus_call):
    with anyio.move_on_after(1.0):
        await blendbus_bpy_client.call_tool("blender_generate_hyper3d_model_via_text",
                                            {"text_prompt": "x", "wait_and_import_as": "X"})
    await asyncio.sleep(1.0)
    polls = fake.polls
    await asyncio.sleep(1.0)
    assert fake.polls == polls  # the peer stopped polling Rodin once the call was cancelled
    still = await blendbus_call(blendbus_bpy_client, "blender_execute_code", {"code": "print(len(bpy.data.objects))"})
    assert still["result"] == "3\n"


async def test_a_bad_key_is_named_not_shown(fake, blendbus_bpy_client, blendbus_call, request):
    await blendbus_call(blendbus_bpy_client, "blender_execute_code", {
        "code": "import bpy\nbpy.context.preferences.addons['blendbus_addon'].preferences.rodin__api_key = 'leaky'"})
    env = await blendbus_call(blendbus_bpy_client, "blender_generate_hyper3d_model_via_text", {"text_prompt": "x"})
    assert env["status"] == p.FAILED and "rejected the API key" in env["error"] and "leaky" not in json.dumps(env)
