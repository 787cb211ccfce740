"""The addon in real Blender (bpy 5.0.1 module) on the bus, through `blendbus peer` and the MCP client."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap

import pytest

from blendbus import protocol as p
from blendbus.client import connect
from blendbus.testing import call_envelope, make_server, peer_uuids, serve_http

from blendbus.testing.blender import blender_peer, needs_bpy, run_in_blender

pytestmark = [pytest.mark.anyio, needs_bpy]


async def test_execute_code_job_dispatch_and_gates(blendbus_server, tmp_path):
    async with serve_http(blendbus_server) as url:
        async with blender_peer(blendbus_server, url, tmp_path, "allow_code_execution=true"):
            async with connect(url) as client:
                env = await call_envelope(client, "blender_execute_code",
                                          {"code": "import bpy; print(len(bpy.data.objects), bpy.app.version_string)"})
                assert env["status"] == p.COMPLETED and env["result"] == "3 5.0.1\n"
                env = await call_envelope(client, "blender_send_message", {"payload": {
                    "message_type": "job_dispatch", "script": "for o in sorted(bpy.data.objects, key=lambda o: o.name):"
                                                              "\n    print(o.name)"}})
                assert env["result"] == "Camera\nCube\nLight\n"
                env = await call_envelope(client, "blender_execute_code", {"code": "bpy.data.objects['Nope']"})
                assert env["status"] == p.FAILED and "KeyError" in env["error"] and "<job_" in env["error"]
                env = await call_envelope(client, "blender_get_polyhaven_status")
                assert env["result"]["enabled"] is False and "polyhaven.enabled" in env["result"]["how_to_enable"]
                env = await call_envelope(client, "blender_search_polyhaven_assets", {"asset_type": "hdris"})
                assert env["status"] == p.FAILED and "'polyhaven.enabled'" in env["error"]
                assert "`blendbus peer --set polyhaven.enabled=true`" in env["error"]  # the fix for this kind of peer
                seen = []

                async def on_progress(progress, total, message):
                    seen.append(progress)

                result = await client.call_tool("blender_test_sleep", {"seconds": 0.2, "steps": 2},
                                                progress_callback=on_progress)
                assert result.structured_content["status"] == p.COMPLETED
                clients = await call_envelope(client, "blender_list_clients")
                assert clients["clients"][0]["blender_version"] == "5.0.1"
        async with blender_peer(blendbus_server, url, tmp_path, uuid="closed-peer"):
            async with connect(url) as client:
                env = await call_envelope(client, "blender_execute_code", {"code": "print(1)"})
                assert env["status"] == p.FAILED and "allow_code_execution" in env["error"]


SYNC_PLUGIN = '''
from blendbus import Command, hookimpl

@hookimpl
def register_commands(register):
    register(Command(name="synced_hello", description="Greets from a synced package",
                     handler="syncplug.addon.handlers:hello"))
'''


async def test_live_handler_sync_to_a_peer_that_lacks_the_plugin(tmp_path, monkeypatch, blendbus_limits):
    plugin_dir = tmp_path / "plugin_src"
    (plugin_dir / "syncplug" / "addon").mkdir(parents=True)
    (plugin_dir / "syncplug" / "__init__.py").write_text(SYNC_PLUGIN)
    (plugin_dir / "syncplug" / "addon" / "__init__.py").write_text("")
    (plugin_dir / "syncplug" / "addon" / "handlers.py").write_text(textwrap.dedent('''
        import bpy
        def hello(name="world"):
            return {"greeting": f"hello {name}", "blender": bpy.app.version_string}
    '''))
    monkeypatch.syspath_prepend(str(plugin_dir))  # the server has it; the peer's process does not
    import syncplug

    server = make_server([("syncplug", syncplug)], state_dir=tmp_path / "state", limits=blendbus_limits)
    async with serve_http(server) as url:
        async with blender_peer(server, url, tmp_path, uuid="refuses", declare=False):
            async with connect(url) as client:
                env = await call_envelope(client, "blender_synced_hello", {"target_uuid": "refuses"})
                assert env["status"] == p.FAILED and "accept_plugin_handlers_from_server" in env["error"]
        async with blender_peer(server, url, tmp_path, "accept_plugin_handlers_from_server=true", uuid="accepts",
                                declare=False):
            async with connect(url) as client:
                env = await call_envelope(client, "blender_synced_hello", {"target_uuid": "accepts"})
                assert env["status"] == p.COMPLETED and env["result"] == {"greeting": "hello world", "blender": "5.0.1"}
                clients = (await call_envelope(client, "blender_list_clients"))["clients"]
                assert "accepts" in [c["client_uuid"] for c in clients]  # "refuses" may linger until its grace ends


async def test_peer_reconnects_after_a_server_restart(tmp_path, blendbus_extra_plugins, blendbus_limits):
    import asyncio

    first = make_server(blendbus_extra_plugins, state_dir=tmp_path / "s", limits=blendbus_limits)
    async with serve_http(first) as url:
        port = int(url.rsplit(":", 1)[1].split("/")[0])
        peer = blender_peer(first, url, tmp_path, "allow_code_execution=true")  # outlives this server
        await peer.__aenter__()
        async with connect(url) as client:
            assert (await call_envelope(client, "blender_test_echo", {"value": 1}))["status"] == p.COMPLETED
    await first.hub.jobs.close()
    second = make_server(blendbus_extra_plugins, state_dir=tmp_path / "s", limits=blendbus_limits)
    try:
        async with serve_http(second, port=port) as url:
            for _ in range(600):
                if "bpy-peer" in await peer_uuids(second):
                    break
                await asyncio.sleep(0.05)
            async with connect(url) as client:
                env = await call_envelope(client, "blender_execute_code", {"code": "print('back')"})
                assert env["status"] == p.COMPLETED and env["result"] == "back\n"
    finally:
        await peer.__aexit__(None, None, None)


def test_addon_registers_and_its_preferences_read_and_write(tmp_path):
    script = textwrap.dedent('''
        import os, sys
        import bpy
        from blendbus_addon import headless, blender
        headless.enable_addon()
        prefs = blender.preferences()
        assert prefs.allow_code_execution == "ask"  # the default: the person approves each script
        blender.set_setting("allow_code_execution", "true")
        blender.set_setting("rodin.mode", "FAL_AI")
        blender.set_setting("later.plugin_key", "v1")
        runtime = blender.BlenderRuntime()
        assert runtime.setting("allow_code_execution") is True
        assert runtime.setting("rodin.mode") == "FAL_AI"
        assert runtime.setting("later.plugin_key") == "v1"
        try:
            blender.set_setting("rodin.mode", "ELSEWHERE")
        except ValueError as exc:
            assert "MAIN_SITE" in str(exc)
        else:
            raise AssertionError("bad enum accepted")
        assert "blendbus" in [c.bl_label for c in bpy.types.Panel.__subclasses__()]
        print("ok")
    ''')
    env = {**os.environ, "BLENDER_USER_RESOURCES": str(tmp_path / "user")}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert out.stdout.strip().endswith("ok"), out.stderr


async def test_peer_opens_a_blend_file_first(blendbus_server, tmp_path):
    blend = tmp_path / "scene.blend"
    script = ("import bpy\nbpy.ops.mesh.primitive_monkey_add()\nbpy.context.active_object.name = 'Suzanne'\n"
              f"bpy.ops.wm.save_as_mainfile(filepath={str(blend)!r})\n")
    run_in_blender(script, workdir=tmp_path)
    async with serve_http(blendbus_server) as url:
        async with blender_peer(blendbus_server, url, tmp_path, "allow_code_execution=true", blend=blend):
            async with connect(url) as client:
                env = await call_envelope(client, "blender_get_object_info", {"name": "Suzanne"})
                assert env["status"] == p.COMPLETED and env["result"]["mesh"]["faces"] == 500


async def test_background_work_leaves_blenders_main_thread_free(blendbus_server, tmp_path):
    async with serve_http(blendbus_server) as url:
        async with blender_peer(blendbus_server, url, tmp_path, "allow_code_execution=true"):
            async with connect(url) as client:
                slow = asyncio.ensure_future(call_envelope(client, "blender_test_background", {"seconds": 1.5}))
                await asyncio.sleep(0.3)
                quick = await call_envelope(client, "blender_execute_code", {"code": "print('main thread is free')"})
                assert quick["status"] == p.COMPLETED and not slow.done()  # answered while the download "runs"
                env = await slow
                assert env["status"] == p.COMPLETED
                assert env["result"]["worker"].startswith("blendbus-background")
                assert env["result"]["answered_on"] == "MainThread"


async def test_a_cancelled_call_stops_blender_and_frees_it(blendbus_server, tmp_path):
    import anyio

    async with serve_http(blendbus_server) as url:
        async with blender_peer(blendbus_server, url, tmp_path, "allow_code_execution=true"):
            async with connect(url) as client:
                with anyio.move_on_after(2.0):  # the caller gives up: notifications/cancelled
                    await client.call_tool("blender_execute_code", {
                        "code": "import time\nwhile True:\n    time.sleep(0.01)", "timeout_s": 300})
                env = await call_envelope(client, "blender_execute_code", {"code": "print('free')", "timeout_s": 10})
                assert env["status"] == p.COMPLETED and env["result"] == "free\n"  # Blender's main thread is free
                jobs = await call_envelope(client, "blender_watch_bus", {"cursor": 0})
                cancelled = [e["job_id"] for e in jobs["events"] if e["kind"] == "cancel"]
                assert cancelled and (await call_envelope(client, "blender_get_job", {"job_id": cancelled[0]}))[
                    "status"] == p.CANCELLED
