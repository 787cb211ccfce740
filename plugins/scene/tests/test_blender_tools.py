"""Render, export, API lookup, node types and the coloured headless view, against real Blender."""

from __future__ import annotations

import asyncio
import base64
import json

import anyio
import pytest

from blendbus import mcp_apps
from blendbus import protocol as p
from blendbus.client import connect

pytestmark = pytest.mark.anyio
RED = "import bpy\nm = bpy.data.materials.new('Red')\nm.use_nodes = True\n" \
      "m.node_tree.nodes['Principled BSDF'].inputs['Base Color'].default_value = (1, 0, 0, 1)\n" \
      "c = bpy.data.objects['Cube']\nc.data.materials.clear()\nc.data.materials.append(m)\n"


async def run(client, call, code: str) -> str:
    env = await call(client, "blender_execute_code", {"code": code})
    assert env["status"] == p.COMPLETED, env["error"]
    return env["result"]


async def test_render_returns_an_image_reports_progress_and_leaves_the_peer_free(shared_bpy_client, blendbus_call):
    client, call = shared_bpy_client, blendbus_call
    seen: list[str] = []

    async def on_progress(done, total, message):
        seen.append(message or "")

    render = asyncio.ensure_future(client.call_tool("blender_render", {
        "engine": "CYCLES", "samples": 16, "resolution": [320, 180], "max_size": 160, "filepath": "renders/shot"},
        progress_callback=on_progress))
    info = await call(client, "blender_get_scene_info")  # answered while the render runs in its own process
    assert info["status"] == p.COMPLETED and not render.done()
    result = await render
    env = result.structured_content
    assert env["status"] == p.COMPLETED, env["error"]
    out = env["result"]
    assert (out["width"], out["height"], out["engine"], out["samples"]) == (320, 180, "CYCLES", 16)
    assert out["filepath"].endswith("renders/shot.png") and out["image"] == {"width": 160, "height": 90}
    png = base64.b64decode(next(c for c in result.content if c.type == "image").data)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert any(m.startswith("sample ") for m in seen), seen
    size = await run(client, call, f"import os\nprint(os.path.getsize({out['filepath']!r}))")
    assert int(size) > len(png)  # the file keeps the full resolution
    camera = await call(client, "blender_render", {"camera": "Nope"})
    assert camera["status"] == p.FAILED and "no camera 'Nope'; cameras: Camera" in camera["error"]


async def test_a_cancelled_render_stops_its_blender(shared_bpy_client, blendbus_call):
    client, call = shared_bpy_client, blendbus_call
    started = asyncio.Event()

    async def on_progress(done, total, message):
        started.set()

    with anyio.move_on_after(120):  # cancelling the MCP request cancels the job
        async with anyio.create_task_group() as tg:
            tg.start_soon(lambda: client.call_tool("blender_render", {
                "engine": "CYCLES", "samples": 4096, "resolution": [1920, 1080]}, progress_callback=on_progress))
            await started.wait()
            tg.cancel_scope.cancel()
    listing = "import subprocess\nprint(subprocess.run(['ps', '-eo', 'args'], capture_output=True, text=True).stdout)"
    for _ in range(50):  # the child is killed within moments of the cancel
        if "BLENDBUS_DONE" not in await run(client, call, listing):
            break
        await asyncio.sleep(0.2)
    else:
        raise AssertionError("the rendering Blender was not stopped")
    assert (await call(client, "blender_get_scene_info"))["status"] == p.COMPLETED


async def test_export_writes_each_format_this_blender_has(shared_bpy_client, blendbus_call):
    client, call = shared_bpy_client, blendbus_call
    for fmt in ("glb", "obj", "stl"):
        env = await call(client, "blender_export_scene", {"format": fmt, "filepath": f"exports/scene.{fmt}"})
        assert env["status"] == p.COMPLETED, env["error"]
        assert env["result"]["format"] == fmt and env["result"]["bytes"] > 100 and env["result"]["objects"] == 3
    gltf = await call(client, "blender_export_scene", {"format": "gltf"})
    assert any(f.endswith(".bin") for f in gltf["result"]["files"])
    unknown = await call(client, "blender_export_scene", {"format": "dxf"})
    assert unknown["status"] == p.FAILED and "cannot export 'dxf'; it can export glb, gltf, fbx, obj" in unknown["error"]
    outside = await call(client, "blender_export_scene", {"format": "glb", "filepath": "/tmp/escape.glb"})
    assert outside["status"] == p.FAILED and "outside this peer's output folder" in outside["error"]
    await run(client, call, "import bpy\nfor o in bpy.context.scene.objects:\n    o.select_set(False)")
    none = await call(client, "blender_export_scene", {"format": "glb", "selected_only": True})
    assert none["status"] == p.FAILED and "no object is selected" in none["error"]


async def test_lookup_api_answers_from_the_running_blender(shared_bpy_client, blendbus_call):
    client, call = shared_bpy_client, blendbus_call
    obj = (await call(client, "blender_lookup_api", {"identifier": "bpy.types.Object", "limit": 500}))["result"]
    props = {prop["identifier"]: prop for prop in obj["properties"]["items"]}
    assert obj["kind"] == "struct" and obj["base"] == "bpy.types.ID" and "location" in props
    assert {"identifier", "type", "read_only"} <= set(props["location"])
    location = (await call(client, "blender_lookup_api", {"identifier": "bpy.types.Object.location"}))["result"]
    assert location["kind"] == "property" and location["array_length"] == 3 and location["subtype"] == "TRANSLATION"
    mode = (await call(client, "blender_lookup_api", {"identifier": "Object.mode"}))["result"]
    assert "EDIT" in mode["enum_items"] and mode["read_only"] is True  # set through bpy.ops.object.mode_set
    cube = (await call(client, "blender_lookup_api", {"identifier": "bpy.ops.mesh.primitive_cube_add"}))["result"]
    size = next(prop for prop in cube["parameters"]["items"] if prop["identifier"] == "size")
    assert cube["kind"] == "operator" and size["type"] == "FLOAT" and size["default"] == 2.0
    found = (await call(client, "blender_lookup_api", {"search": "subdivision"}))["result"]
    assert "bpy.types.SubsurfModifier" in [r["identifier"] for r in found["results"]["items"]]
    missing = await call(client, "blender_lookup_api", {"identifier": "bpy.types.Objct"})
    assert missing["status"] == p.FAILED and "close matches: bpy.types.Object" in missing["error"]
    both = await call(client, "blender_lookup_api", {"identifier": "Object", "search": "x"})
    assert both["status"] == p.INVALID and "pass exactly one of identifier, search" in both["error"]
    page = (await call(client, "blender_lookup_api", {"identifier": "bpy.types.Object", "limit": 5, "offset": 5}))
    assert len(page["result"]["properties"]["items"]) == 5 and page["result"]["properties"]["next_offset"] == 10


async def test_describe_node_type(shared_bpy_client, blendbus_call):
    client, call = shared_bpy_client, blendbus_call
    node = (await call(client, "blender_describe_node_type", {"node_type": "ShaderNodeBsdfPrincipled"}))["result"]
    base = next(s for s in node["inputs"] if s["name"] == "Base Color")
    assert node["tree_type"] == "ShaderNodeTree" and base["type"] == "NodeSocketColor" and len(base["default"]) == 4
    assert [s["name"] for s in node["outputs"]] == ["BSDF"]
    assert "distribution" in {prop["identifier"] for prop in node["properties"]}
    geo = (await call(client, "blender_describe_node_type", {"node_type": "GeometryNodeMeshCube"}))["result"]
    assert geo["tree_type"] == "GeometryNodeTree" and "Size" in [s["name"] for s in geo["inputs"]]
    wrong = await call(client, "blender_describe_node_type", {"node_type": "ShaderNodeBsdfPrincpled"})
    assert wrong["status"] == p.FAILED and "ShaderNodeBsdfPrincipled" in wrong["error"]
    left = await run(client, call, "import bpy\nprint(len(bpy.data.node_groups))")
    assert left.strip() == "0"  # the throwaway tree is gone


async def test_the_headless_view_shows_the_colour_set_on_the_nodes(shared_bpy_client, blendbus_call):
    client, call = shared_bpy_client, blendbus_call
    await run(client, call, RED)
    env = await call(client, "blender_get_viewport_screenshot", {"filepath": "views/red.png", "max_size": 320})
    assert env["status"] == p.COMPLETED, env["error"]
    assert "Base Color" in env["result"]["colours"]
    measure = (f"import bpy, json\nimg = bpy.data.images.load({env['result']['filepath']!r})\n"
               "w, h = img.size\npx = list(img.pixels)\nr = g = b = 0\n"
               "for y in range(h // 3, 2 * h // 3):\n    for x in range(w // 3, 2 * w // 3):\n"
               "        i = 4 * (y * w + x)\n        r, g, b = r + px[i], g + px[i + 1], b + px[i + 2]\n"
               "print(json.dumps([r, g, b, list(bpy.data.materials['Red'].diffuse_color)]))")
    red, green, blue, kept = json.loads(await run(client, call, measure))
    assert red > 3 * green and red > 3 * blue  # the red the script set, not the grey viewport colour
    assert kept == pytest.approx([0.8, 0.8, 0.8, 1.0])  # and the material's own viewport colour is unchanged


PROJECT = ("import bpy, json\nfrom bpy_extras.object_utils import world_to_camera_view\nscene = bpy.context.scene\n"
           "cam = scene.objects[{camera!r}]\n"
           "print(json.dumps({{o.name: list(world_to_camera_view(scene, cam, o.matrix_world.translation))[:2]"
           " for o in scene.objects if o.type == 'MESH'}}))")


async def test_pick_selects_the_object_under_a_point_of_the_picture(shared_bpy_url, blendbus_call):
    async with connect(shared_bpy_url, extensions=[mcp_apps.host()]) as client:  # pick is the viewport App's
        await picks(client, blendbus_call)


async def picks(client, call) -> None:
    await run(client, call, "import bpy\nbpy.ops.mesh.primitive_uv_sphere_add(radius=0.8, location=(0, 3, 0))\n"
                            "bpy.ops.object.select_all(action='DESELECT')")
    shot = await call(client, "blender_get_viewport_screenshot", {"max_size": 320})
    assert shot["status"] == p.COMPLETED, shot["error"]
    view = shot["result"]
    assert (view["view"], view["camera"]) == ("camera", "Camera")
    where = json.loads(await run(client, call, PROJECT.format(camera=view["camera"])))
    for name in ("Sphere", "Cube"):  # camera-view coordinates run from the bottom left; a picture's from the top left
        x, y = where[name]
        picked = await call(client, "blender_pick_object", {"x": x, "y": 1 - y, "view": view["view"],
                                                            "camera": view["camera"],
                                                            "aspect": view["width"] / view["height"]})
        assert picked["status"] == p.COMPLETED, picked["error"]
        assert (picked["result"]["object"], picked["result"]["type"], picked["result"]["selected"]) == (name, "MESH", [name])
        active = await run(client, call, "import bpy\nprint(bpy.context.view_layer.objects.active.name)")
        assert active.strip() == name
    empty = await call(client, "blender_pick_object", {"x": 0.01, "y": 0.01})
    assert empty["result"]["object"] is None and empty["result"]["selected"] == ["Cube"]  # the selection stays
    # Without a camera the headless view frames the scene with a temporary one; a pick sees the same framing.
    await run(client, call, "import bpy\nfor name in ('Camera', 'Sphere'):\n    bpy.data.objects.remove(bpy.data.objects[name])")
    shot = await call(client, "blender_get_viewport_screenshot", {"max_size": 160})
    assert shot["result"]["camera"] is None
    centre = await call(client, "blender_pick_object", {"x": 0.5, "y": 0.5})
    assert centre["result"]["object"] == "Cube"
    cameras = await run(client, call, "import bpy\nprint([o.name for o in bpy.data.objects if o.type == 'CAMERA'],"
                                      " bpy.context.scene.camera)")
    assert cameras.strip() == "[] None"  # the temporary camera is gone again


async def test_screenshots_and_renders_are_not_scene_changes(blendbus_bpy_client, blendbus_call):
    """What a screenshot or a render touches, they put back: subscribers hear of real edits only."""
    client, call = blendbus_bpy_client, blendbus_call
    cursor = (await call_tool_structured(client, "blender_watch_bus", {"cursor": 1 << 52}))["cursor"]
    for tool, arguments in (("blender_get_viewport_screenshot", {"max_size": 64}),
                            ("blender_render", {"engine": "WORKBENCH", "resolution": [64, 36]}),
                            ("blender_export_scene", {"format": "stl"})):
        assert (await call(client, tool, arguments))["status"] == p.COMPLETED
    await run(client, call, "import bpy\nbpy.data.objects['Cube'].location.x += 1")
    changes: list[dict] = []
    with anyio.fail_after(30):
        while not changes:
            bus = await call_tool_structured(client, "blender_watch_bus", {"cursor": cursor, "wait_s": 5})
            cursor = bus["cursor"]
            changes += [e for e in bus["events"] if e["kind"] == p.SCENE_CHANGED]
    assert changes[0]["objects"] == ["Cube"], changes  # the first change heard is the edit


async def call_tool_structured(client, tool: str, arguments: dict) -> dict:
    result = await client.call_tool(tool, arguments)
    assert not result.is_error, result
    return result.structured_content
