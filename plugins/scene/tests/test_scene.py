"""The scene plugin against real Blender through `blendbus peer` and the MCP client (blendbus's own fixtures)."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from blendbus import protocol as p
from blendbus.testing import call_whole

pytestmark = pytest.mark.anyio


SCENE = """
import bpy
for o in list(bpy.data.objects):
    bpy.data.objects.remove(o)
root = bpy.data.collections.new("Props")
bpy.context.scene.collection.children.link(root)
inner = bpy.data.collections.new("Inner")
root.children.link(inner)
mat = bpy.data.materials.new("Painted")
mat.use_nodes = True
mesh = bpy.data.meshes.new("m")
mesh.from_pydata([(0,0,0),(1,0,0),(0,1,0)], [], [(0,1,2)])
parent = None
for i in range(500):
    kind = i % 4
    data = mesh if kind == 0 else bpy.data.lights.new(f"l{i}", "POINT") if kind == 1 else \
        bpy.data.cameras.new(f"c{i}") if kind == 2 else None
    obj = bpy.data.objects.new(f"obj_{i:03d}", data)
    (inner if i % 2 else root).objects.link(obj)
    obj.location = (i, 0, 0)
    if kind == 0 and parent is None:
        parent = obj
        obj.modifiers.new("Sub", "SUBSURF")
        obj.data.materials.append(mat)
        obj["note"] = "hello"
    elif kind == 3:
        obj.parent = parent
print(len(bpy.context.scene.objects))
"""


async def test_scene_plugin_on_a_500_object_scene(shared_bpy_client, blendbus_call):
    client, call_envelope = shared_bpy_client, blendbus_call
    assert (await call_envelope(client, "blender_execute_code", {"code": SCENE}))["result"] == "500\n"
    info = (await call_envelope(client, "blender_get_scene_info"))["result"]
    assert info["object_count"] == 500 and len(info["objects"]) == 500 and not info["truncated"]
    assert info["counts_by_type"] == {"MESH": 125, "LIGHT": 125, "CAMERA": 125, "EMPTY": 125}
    props = next(c for c in info["collections"]["children"] if c["name"] == "Props")
    assert props["objects"] == 250 and props["children"][0] == {"name": "Inner", "objects": 250,
                                                               "children": []}
    first = next(o for o in info["objects"] if o["name"] == "obj_000")
    assert first["location"] == [0.0, 0.0, 0.0] and first["collections"] == ["Props"]
    assert next(o for o in info["objects"] if o["name"] == "obj_003")["parent"] == "obj_000"

    obj = (await call_envelope(client, "blender_get_object_info", {"name": "obj_000"}))["result"]
    assert obj["modifiers"][0]["type"] == "SUBSURF" and obj["mesh"]["faces"] == 1
    assert obj["materials"][0]["name"] == "Painted" and obj["materials"][0]["node_count"] >= 2
    assert obj["custom_properties"] == {"note": "hello"} and "obj_003" in obj["children"]
    smoothed = obj["world_bounding_box"]  # Subsurf keeps it within the triangle (how far in varies by version)
    assert 0.0 <= smoothed["min"][0] < smoothed["max"][0] <= 1.0
    plain = (await call_envelope(client, "blender_get_object_info", {"name": "obj_004"}))["result"]
    assert plain["world_bounding_box"] == {"min": [4.0, 0.0, 0.0], "max": [5.0, 1.0, 0.0]}
    light = (await call_envelope(client, "blender_get_object_info", {"name": "obj_001"}))["result"]
    assert light["light"]["type"] == "POINT"
    miss = await call_envelope(client, "blender_get_object_info", {"name": "obj_0000"})
    assert miss["status"] == p.FAILED and "did you mean" in miss["error"] and "obj_000" in miss["error"]

    top = (await call_envelope(client, "blender_browse_data"))["result"]
    assert {"name": "objects", "count": 500} in top["items"]
    page = (await call_envelope(client, "blender_browse_data",
                                {"path": "objects", "offset": 490, "limit": 20}))["result"]
    assert page["total"] == 500 and len(page["items"]) == 10 and page["next_offset"] is None
    props = (await call_envelope(client, "blender_browse_data",
                                 {"path": "objects/obj_000", "limit": 1000}))["result"]
    values = {i["name"]: i["value"] for i in props["items"]}
    assert values["type"] == "MESH" and values["location"] == [0.0, 0.0, 0.0]
    assert values["data"] == {"pointer": "Mesh", "name": "m"}
    bad = await call_envelope(client, "blender_browse_data", {"path": "__class__/x"})
    assert bad["status"] == p.FAILED and "bpy.data collection" in bad["error"]

    summary = await client.read_resource("blender://scene/info")
    assert '"object_count": 500' in summary.contents[0].text
    objects = await client.read_resource("blender://scene/objects")
    assert '"total": 500' in objects.contents[0].text
    one = await client.read_resource("blender://scene/object/obj_001")
    assert '"POINT"' in one.contents[0].text


async def test_headless_screenshot_renders_without_a_camera(shared_bpy_client, blendbus_call):
    client, call_envelope = shared_bpy_client, blendbus_call
    await call_envelope(client, "blender_execute_code", {
        "code": "bpy.data.objects.remove(bpy.data.objects['Camera'])"})
    result = await client.call_tool("blender_get_viewport_screenshot", {"filepath": "views/shot", "max_size": 64})
    env = result.structured_content
    assert env["status"] == p.COMPLETED, env
    target = Path(env["result"]["filepath"])
    assert target.parts[-5:] == ("peer-bpy-peer", "output", "bpy-peer", "views", "shot.png")  # the peer's output folder
    assert env["result"]["width"] == 64 and env["result"]["height"] == 36
    assert "_images" not in env["result"]
    image = next(c for c in result.content if c.type == "image")
    png = base64.b64decode(image.data)
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and target.read_bytes() == png
    left = await call_envelope(client, "blender_execute_code", {"code": (
        "print(sorted(c.name for c in bpy.data.cameras), bpy.context.scene.camera)")})
    assert left["result"] == "['Camera'] None\n"  # the temporary camera is gone, nothing else changed


async def test_large_scenes_point_to_paging_and_values_stay_json_safe(shared_bpy_client, blendbus_call):
    client, call_envelope = shared_bpy_client, blendbus_call
    import blendbus_scene.addon.handlers as handlers

    many = handlers.MAX_SCENE_OBJECTS + 20
    script = (f"import bpy, math\nfor i in range({many}):\n    bpy.context.scene.collection.objects.link("
              "bpy.data.objects.new(f'e{i}', None))\n"
              "bpy.data.objects['e0'].location.x = math.nan\nbpy.data.objects['e1']['far'] = -math.inf\n"
              "bpy.data.objects['e2']['arr'] = [1.5, 2.5]\nbpy.data.objects['e2']['grp'] = {'a': 1}\n")
    assert (await call_envelope(client, "blender_execute_code", {"code": script}))["status"] == p.COMPLETED
    info = (await call_whole(client, "blender_get_scene_info"))["result"]  # over 256 KiB: it comes in pages
    assert info["truncated"] and len(info["objects"]) == handlers.MAX_SCENE_OBJECTS
    assert "blender_browse_data" in info["hint"] and info["object_count"] == many + 3
    e0 = (await call_envelope(client, "blender_get_object_info", {"name": "e0"}))["result"]
    assert e0["location"][0] == "NaN"
    e1 = (await call_envelope(client, "blender_get_object_info", {"name": "e1"}))["result"]
    assert e1["custom_properties"]["far"] == "-Infinity"
    e2 = (await call_envelope(client, "blender_get_object_info", {"name": "e2"}))["result"]
    assert e2["custom_properties"] == {"arr": [1.5, 2.5], "grp": {"a": 1}}
    last = (await call_envelope(client, "blender_list_objects",
                                {"offset": many, "limit": 100}))["result"]
    assert last["total"] == many + 3 and last["next_offset"] is None
