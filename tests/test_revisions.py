"""Scene revisions: every result says which revision of the scene it saw or made, and a call based on
a stale read is refused with `conflict` and what moved, instead of overwriting another's work."""

from __future__ import annotations

import pytest

from blendbus import protocol as p
from blendbus.client import connect
from blendbus.testing import PythonPeer, call_envelope, serve_http
from blendbus.testing.blender import blender_peer, needs_bpy

pytestmark = pytest.mark.anyio


async def test_a_stale_expect_revision_runs_nothing_and_says_what_moved(blendbus_server):
    """On the Python test peer each scene-changing job is one move (it has no scene to watch)."""
    async with serve_http(blendbus_server) as url, PythonPeer(lambda: connect(url), uuid="p1"), \
            connect(url) as one, connect(url) as other:
        read = await call_envelope(one, "blender_test_noop")  # read-only: moves nothing
        assert read["revision"] == 0 and "changes" not in read
        first = await call_envelope(other, "blender_test_echo", {"value": "mine", p.EXPECT_REVISION: 0})
        assert first["status"] == p.COMPLETED and first["revision"] == 1 and first["changes"]["moves"] == 1
        late = await call_envelope(one, "blender_test_echo", {"value": "yours", p.EXPECT_REVISION: 0})
        assert late["status"] == p.CONFLICT and late["result"] is None
        assert late["revision"] == 1 and late["changes"]["moves"] == 1 and "read the scene again" in late["error"].lower()
        again = await call_envelope(one, "blender_get_job", {"job_id": late["job_id"]})  # kept with the job
        assert again["status"] == p.CONFLICT and again["revision"] == 1
        assert (await call_envelope(one, "blender_test_echo", {"value": "x", p.EXPECT_REVISION: 1}))["revision"] == 2
        ahead = await call_envelope(one, "blender_test_echo", {"value": "x", p.EXPECT_REVISION: 99})
        assert ahead["status"] == p.CONFLICT and ahead["changes"] == {"moves": 0, "unknown": True}
        assert "this peer restarted" in ahead["error"]
        bad = await call_envelope(one, "blender_test_noop", {p.EXPECT_REVISION: 0})  # reads take none
        assert bad["status"] == p.INVALID and p.EXPECT_REVISION in bad["error"]


CUBE_AT = "print(tuple(round(v, 3) for v in bpy.data.objects['Cube'].location))"


@needs_bpy
async def test_two_clients_editing_one_cube_get_a_conflict_not_an_overwrite(blendbus_server, tmp_path):
    async with serve_http(blendbus_server) as url, \
            blender_peer(blendbus_server, url, tmp_path, "allow_code_execution=true"), \
            connect(url) as alice, connect(url) as bob:
        seen_a = await call_envelope(alice, "blender_get_object_info", {"name": "Cube"})
        seen_b = await call_envelope(bob, "blender_get_object_info", {"name": "Cube"})
        assert seen_a["revision"] == seen_b["revision"]
        base = seen_a["revision"]
        moved = await call_envelope(alice, "blender_execute_code", {
            "code": "bpy.data.objects['Cube'].location.x = 3", p.EXPECT_REVISION: base})
        assert moved["status"] == p.COMPLETED and moved["revision"] > base
        assert moved["changes"]["modified"] == ["Cube"]
        stale = await call_envelope(bob, "blender_execute_code", {
            "code": "bpy.data.objects['Cube'].location.x = -3", p.EXPECT_REVISION: base})
        assert stale["status"] == p.CONFLICT and stale["revision"] == moved["revision"]
        assert stale["changes"]["modified"] == ["Cube"]
        assert (await call_envelope(bob, "blender_execute_code", {"code": CUBE_AT}))["result"] == "(3.0, 0.0, 0.0)\n"

        made = await call_envelope(alice, "blender_execute_code", {
            "code": "bpy.ops.mesh.primitive_uv_sphere_add(); bpy.context.object.name = 'Ball'"})
        gone = await call_envelope(alice, "blender_execute_code", {
            "code": "bpy.data.objects.remove(bpy.data.objects['Light'])"})
        stale = await call_envelope(bob, "blender_execute_code", {"code": "print(1)",
                                                                  p.EXPECT_REVISION: moved["revision"]})
        assert stale["status"] == p.CONFLICT and stale["revision"] == gone["revision"] > made["revision"]
        assert stale["changes"]["added"] == ["Ball"] and stale["changes"]["removed"] == ["Light"]
        read = await call_envelope(bob, "blender_get_scene_info")  # a read moves nothing
        resource = (await bob.read_resource("blender://scene/info")).contents[0]
        assert resource.meta == {"revision": read["revision"]}
        fresh = await call_envelope(bob, "blender_execute_code", {"code": "print(2)", p.EXPECT_REVISION: read["revision"]})
        assert read["revision"] == gone["revision"] and fresh["status"] == p.COMPLETED


@needs_bpy
async def test_undo_by_call_reverts_one_call_or_says_what_is_in_the_way(blendbus_server, tmp_path):
    async with serve_http(blendbus_server) as url, \
            blender_peer(blendbus_server, url, tmp_path, "allow_code_execution=true"), connect(url) as client:
        add = await call_envelope(client, "blender_execute_code", {
            "code": "bpy.ops.mesh.primitive_cube_add(location=(0, 5, 0)); bpy.context.object.name = 'Box'"})
        move = await call_envelope(client, "blender_execute_code", {"code": "bpy.data.objects['Cube'].location.x = 2"})
        assert move["changes"]["modified"] == ["Cube"]

        blocked = await call_envelope(client, "blender_undo_job", {"job_id": add["job_id"]})
        assert blocked["status"] == p.CONFLICT and blocked["changes"]["modified"] == ["Cube"]
        assert "cascade" in blocked["error"]

        undone = await call_envelope(client, "blender_undo_job", {"job_id": move["job_id"]})
        assert undone["status"] == p.COMPLETED and undone["result"]["reverted"] == move["job_id"]
        assert undone["revision"] > move["revision"]
        look = "print(bpy.data.objects['Cube'].location.x, 'Box' in bpy.data.objects)"
        assert (await call_envelope(client, "blender_execute_code", {"code": look}))["result"] == "0.0 True\n"

        again = await call_envelope(client, "blender_undo_job", {"job_id": add["job_id"]})  # nothing after it now
        assert again["status"] == p.COMPLETED and again["changes"]["removed"] == ["Box"]
        assert (await call_envelope(client, "blender_execute_code", {"code": look}))["result"] == "0.0 False\n"
        twice = await call_envelope(client, "blender_undo_job", {"job_id": add["job_id"]})
        assert twice["status"] == p.FAILED and "reverted already" in twice["error"]

        trail = await call_envelope(client, "blender_list_changes", {"since_revision": 0})
        commands = [c["command"] for c in trail["result"]["changes"]]
        assert commands.count("execute_code") >= 2 and "undo_job" in commands
        assert any(c.get("added") == ["Box"] and c["job_id"] == add["job_id"] for c in trail["result"]["changes"])


@needs_bpy
async def test_verify_returns_a_picture_of_the_scene_with_the_call(blendbus_server, tmp_path):
    async with serve_http(blendbus_server) as url, \
            blender_peer(blendbus_server, url, tmp_path, "allow_code_execution=true"), connect(url) as client:
        result = await client.call_tool("blender_execute_code", {
            "code": "bpy.data.objects['Cube'].scale = (2, 2, 2)", p.VERIFY: True})
        env = result.structured_content
        assert env["status"] == p.COMPLETED and env["changes"]["modified"] == ["Cube"]
        pictures = [c for c in result.content if c.type == "image"]
        assert len(pictures) == 1 and pictures[0].mime_type == "image/png"
        assert max(env[p.VERIFY]["width"], env[p.VERIFY]["height"]) <= 320 and env[p.VERIFY]["ms"] >= 0
        plain = await client.call_tool("blender_execute_code", {"code": "print(1)"})
        assert not [c for c in plain.content if c.type == "image"] and p.VERIFY not in plain.structured_content
        failed = await call_envelope(client, "blender_execute_code", {"code": "1/0", p.VERIFY: True})
        assert failed["status"] == p.FAILED and "no picture" in failed[p.VERIFY]["error"]
