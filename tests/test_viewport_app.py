"""The viewport MCP App (ui://blendbus/viewport) in a real browser host, against real Blender: it shows
the LLM's screenshot, picks the object clicked (selected in Blender, handed to the model context),
refreshes itself when the scene changes, renders on demand and lists the peers.
`BLENDBUS_UPDATE_DOCS=1` also writes docs/images/viewport-app.png."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from blendbus import mcp_apps
from blendbus import protocol as p
from blendbus.client import connect
from blendbus.plugins import load_plugins
from blendbus.testing import PythonPeer, eventually
from blendbus.testing import run_code as run
from blendbus.testing.apphost import AppHost

from .accessibility import violations
from .sdk_apphost import SdkAppHost

pytestmark = pytest.mark.anyio
DOCS_IMAGE = Path(__file__).parents[1] / "docs" / "images" / "viewport-app.png"
SCENE = ("import bpy\nbpy.ops.mesh.primitive_uv_sphere_add(radius=0.9, location=(0, 2.6, 0.4))\n"
         "m = bpy.data.materials.new('Orange')\nm.use_nodes = True\n"
         "m.node_tree.nodes['Principled BSDF'].inputs['Base Color'].default_value = (1, 0.35, 0.05, 1)\n"
         "bpy.context.object.data.materials.append(m)\nbpy.ops.object.select_all(action='DESELECT')")
WHERE = ("import bpy, json\nfrom bpy_extras.object_utils import world_to_camera_view\nscene = bpy.context.scene\n"
         "print(json.dumps(list(world_to_camera_view(scene, scene.camera, bpy.data.objects[{name!r}]"
         ".matrix_world.translation))[:2]))")


@pytest.fixture
def blendbus_peer_settings() -> list[str]:
    return ["allow_code_execution=true"]


async def test_the_viewport_app_shows_picks_refreshes_and_renders(blendbus_bpy_url):
    async with connect(blendbus_bpy_url, extensions=[mcp_apps.host()]) as client:
        await run(client, SCENE)
        arguments = {"max_size": 600}
        first = await client.call_tool("blender_get_viewport_screenshot", arguments)  # what the LLM asked for
        assert first.structured_content["status"] == p.COMPLETED
        async with AppHost(client) as host:
            await host.open("blender_get_viewport_screenshot", arguments, first)
            view = host.app.locator("#view")
            shown = await eventually(lambda: view.get_attribute("src"), "the screenshot")
            assert shown == "data:image/png;base64," + next(c.data for c in first.content if c.type == "image")
            assert await host.app.locator("#peer").input_value() == "bpy-peer"

            # Click the sphere where the camera sees it: Blender selects it, the model context names it.
            x, y = json.loads(await run(client, WHERE.format(name="Sphere")))
            box = await view.bounding_box()
            await view.click(position={"x": x * box["width"], "y": (1 - y) * box["height"]})
            context = await eventually(host.model_context, "the model context")
            assert context["structuredContent"]["selected"]["object"] == "Sphere"
            assert 'not an instruction: name "Sphere", type "MESH"' in context["content"][0]["text"]
            assert "Sphere" in await host.app.locator("#picked").inner_text()
            selected = await run(client, "import bpy\nprint([o.name for o in bpy.context.selected_objects],"
                                         " bpy.context.view_layer.objects.active.name)")
            assert selected.strip() == "['Sphere'] Sphere"
            if os.environ.get("BLENDBUS_UPDATE_DOCS"):
                await host.page.screenshot(path=str(DOCS_IMAGE))
            assert not (found := await violations(await host.frame())), found  # axe-core: no WCAG violation

            # The LLM edits the scene: the view refreshes by itself.
            await run(client, "import bpy\nbpy.data.objects['Sphere'].location.z += 1.2")
            await eventually(lambda: _changed(view, shown), "a refreshed view")
            assert "blender_get_viewport_screenshot" in " ".join(host.relayed[-3:])

            # Render on demand, and a second peer shows up in the picker.
            await host.app.locator("#render").click()
            status = host.app.locator("#status")
            await eventually(lambda: _contains(status, "CYCLES render"), "the render", 120)
            core_only = load_plugins(env={"BLENDBUS_LOAD_PLUGINS": ""})  # a peer without the scene plugin
            async with PythonPeer(lambda: connect(blendbus_bpy_url), uuid="second-peer", plugins=core_only):
                peers = host.app.locator("#peer option")
                await eventually(lambda: _count_is(peers, 2), "the second peer in the picker")
                assert await host.app.locator("#peer").input_value() == "bpy-peer"
                # Choosing a peer points the view at it: this one cannot take screenshots, and the view says so.
                await host.app.locator("#peer").select_option("second-peer")
                await eventually(lambda: _contains(status, "does not declare the command 'get_viewport_screenshot'"),
                                 "its answer")
                await host.app.locator("#peer").select_option("bpy-peer")
                await eventually(lambda: _contains(status, "bpy-peer"), "the Blender peer's view again")
            assert "blender_pick_object" in " ".join(host.relayed)


async def test_only_apps_clients_see_the_app(blendbus_bpy_url):
    """Clients without MCP Apps get today's tools, results and resources; the App itself is static."""
    async with connect(blendbus_bpy_url) as plain, connect(blendbus_bpy_url, extensions=[mcp_apps.host()]) as apps:
        plain_tools = {t.name: t for t in (await plain.list_tools()).tools}
        app_tools = {t.name: t for t in (await apps.list_tools()).tools}
        assert "blender_pick_object" not in plain_tools and plain_tools["blender_render"].meta is None
        assert app_tools["blender_pick_object"].meta == {"ui": {"resourceUri": "ui://blendbus/viewport",
                                                                "visibility": ["app"]}}
        assert app_tools["blender_render"].meta["ui"]["resourceUri"] == "ui://blendbus/viewport"
        refused = await plain.call_tool("blender_pick_object", {"x": 0.5, "y": 0.5})
        assert refused.is_error and "io.modelcontextprotocol/ui" in refused.structured_content["error"]
        assert "ui://blendbus/viewport" not in {str(r.uri) for r in (await plain.list_resources()).resources}
        assert "ui://blendbus/viewport" in {str(r.uri) for r in (await apps.list_resources()).resources}
        page = (await plain.read_resource("ui://blendbus/viewport")).contents[0]
        assert page.mime_type == "text/html;profile=mcp-app" and "<script>" in page.text
        assert "http://" not in page.text and "https://" not in page.text  # nothing to fetch: the CSP allows none
        assert f'"{p.SCENE_CHANGED}"' in page.text  # the event it refreshes on is the bus's own


async def test_the_app_follows_the_apps_sdk_contract(blendbus_bpy_url):
    """What the official MCP Apps SDK does, the App does: sizes only after `initialized`, measured from
    its content so the frame can shrink; no second screenshot while the host's own call is on its way;
    no `ui/update-model-context` to a host without it (the pick still succeeds); a crosshair in
    fractions of the picture, which stays put when the frame resizes."""
    async with connect(blendbus_bpy_url, extensions=[mcp_apps.host()]) as client:
        arguments = {"max_size": 400}
        first = await client.call_tool("blender_get_viewport_screenshot", arguments)
        async with AppHost(client, height=900, capabilities={"serverTools": {}, "serverResources": {}}) as host:
            await host.open("blender_get_viewport_screenshot", arguments, first)
            view = host.app.locator("#view")
            await eventually(lambda: view.get_attribute("src"), "the host's screenshot")
            await eventually(lambda: _relayed(host, "tools/call blender_watch_bus"), "the App following the bus")
            assert "tools/call blender_get_viewport_screenshot" not in host.relayed  # the host's picture was enough
            log = await host.log()
            assert log.index("ui/notifications/initialized") < log.index("ui/notifications/size-changed")
            sizes = await eventually(host.sizes, "a reported size")
            assert sizes[-1]["height"] < 900  # the content, not the frame it was given

            x, y = json.loads(await run(client, WHERE.format(name="Cube")))
            box = await view.bounding_box()
            await view.click(position={"x": x * box["width"], "y": (1 - y) * box["height"]})
            picked = host.app.locator("#picked")
            await eventually(lambda: _contains(picked, "does not pass picks"), "the pick's answer")
            assert "Cube" in await picked.inner_text()
            assert "ui/update-model-context" not in await host.log() and await host.model_context() is None
            assert "Pick failed" not in await host.app.locator("#status").inner_text()
            marker = host.app.locator("#marker")
            assert (await marker.get_attribute("style")).count("%") == 2
            before = await marker.bounding_box()
            box = await view.bounding_box()
            await host.page.evaluate("document.getElementById('app').style.width = '300px'")  # the host narrows the frame
            await eventually(lambda: _resized(view, box), "the picture resized")
            after, now = await marker.bounding_box(), await view.bounding_box()
            for axis, size in (("x", "width"), ("y", "height")):  # the same point of the picture, at any size
                fraction = (before[axis] - box[axis]) / box[size]
                assert abs((after[axis] - now[axis]) / now[size] - fraction) < 0.02


async def test_the_app_in_a_host_built_on_the_official_apps_sdk(blendbus_bpy_url, tmp_path):
    """The official MCP Apps SDK's AppBridge hosts the App behind a sandbox proxy on a second origin:
    the handshake, the host's picture, sizes after `initialized`, a pick that Blender makes and the
    model context names, the host's theme and a change of it."""
    async with connect(blendbus_bpy_url, extensions=[mcp_apps.host()]) as client:
        arguments = {"max_size": 400}
        first = await client.call_tool("blender_get_viewport_screenshot", arguments)
        async with SdkAppHost(client, tmp_path, height=900, theme="dark") as host:
            await host.open("blender_get_viewport_screenshot", arguments, first)
            view = host.app.locator("#view")
            shown = await eventually(lambda: view.get_attribute("src"), "the host's screenshot")
            assert shown == "data:image/png;base64," + next(c.data for c in first.content if c.type == "image")
            sizes = await eventually(host.sizes, "a reported size")
            assert sizes[-1]["height"] < 900
            log = await host.log()
            assert log.index("ui/initialize") < log.index("ui/notifications/initialized") \
                < log.index("ui/notifications/size-changed")
            app = await host.frame()
            assert await app.evaluate("document.documentElement.style.colorScheme") == "dark"
            origins = {await app.evaluate("location.origin"), await host.page.evaluate("location.origin")}
            assert len(origins) == 2 and any(o.startswith("http://localhost:") for o in origins)  # the proxy's own

            x, y = json.loads(await run(client, WHERE.format(name="Cube")))
            box = await view.bounding_box()
            await view.click(position={"x": x * box["width"], "y": (1 - y) * box["height"]})
            context = await eventually(host.model_context, "the model context")
            assert context["structuredContent"]["selected"]["object"] == "Cube"
            selected = await run(client, "import bpy\nprint([o.name for o in bpy.context.selected_objects])")
            assert "Cube" in selected

            await host.set_theme("light")
            await eventually(lambda: _scheme(app, "light"), "the host's new theme")


async def _scheme(frame, scheme: str) -> bool:
    return await frame.evaluate("document.documentElement.style.colorScheme") == scheme


async def _relayed(host: AppHost, what: str) -> bool:
    return what in host.relayed


async def _resized(locator, box: dict[str, float]) -> bool:
    return (await locator.bounding_box())["width"] != box["width"]


async def _changed(locator, before: str) -> bool:
    src = await locator.get_attribute("src")
    return bool(src) and src != before


async def _contains(locator, text: str) -> bool:
    return text in await locator.inner_text()


async def _count_is(locator, n: int) -> bool:
    return await locator.count() == n
