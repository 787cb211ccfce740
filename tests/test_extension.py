"""`blendbus addon build`: a zip per platform Blender runs on; the Linux one installs into Blender through
Blender's own installer and works with nothing else installed.

The Blender here sees only bpy (and numpy, which Blender ships): blendbus, mcp and the plugins come
from the zip's wheels and bundled handler packages. Timers never fire in module mode, so the test
drives the addon's GUI drain timer itself. Windows and macOS cannot run here: their zips are checked
with Blender's own rules (its manifest validator, and its test of which wheel fits which platform).
"""

from __future__ import annotations

import asyncio
import importlib.util
import io
import json
import os
import re
import subprocess
import sys
import textwrap
import tomllib
import zipfile
from pathlib import Path

import pytest

from blendbus import protocol as p
from blendbus.client import connect
from blendbus import __version__
from blendbus.extension import NOT_BUNDLED, PLATFORMS, build, imported_distributions
from blendbus.testing import call_envelope, peer_uuids, serve_http
from blendbus.testing.blender import needs_bpy, stop_process

pytestmark = [pytest.mark.anyio, needs_bpy]

GUI_PEER = textwrap.dedent('''
    import os, sys, time
    sys.path.append(sys.argv[1])
    import bpy
    result = bpy.ops.extensions.package_install_files(filepath=sys.argv[2], repo="user_default",
                                                      enable_on_install=True)
    assert result == {"FINISHED"}, result
    import blendbus, mcp
    assert "extensions" in blendbus.__file__ and "extensions" in mcp.__file__, (blendbus.__file__, mcp.__file__)
    name = "bl_ext.user_default.blendbus"
    prefs = bpy.context.preferences.addons[name].preferences
    prefs.server_url, prefs.allow_code_execution, prefs.client_uuid = sys.argv[3], "true", "gui-peer"
    assert hasattr(prefs, "polyhaven__enabled")  # plugin preferences from the zip's declarations.json
    bpy.ops.blendbus.connect()
    blender = sys.modules[name + ".blender"]
    stop = sys.argv[4]
    deadline = time.monotonic() + 120
    while not os.path.exists(stop) and time.monotonic() < deadline:
        interval = blender.drain_timer()
        time.sleep(interval or 0.001)
    ran = len(blender._State.core.recent)
    bpy.ops.blendbus.disconnect()
    print("ran", ran)
''')


def only_bpy(tmp_path: Path) -> Path:
    """A folder holding links to bpy and numpy alone."""
    site = Path(importlib.util.find_spec("bpy").submodule_search_locations[0]).parent
    isolated = tmp_path / "only-bpy"
    isolated.mkdir()
    for entry in site.iterdir():
        if entry.name.split("-")[0].split(".")[0] in ("bpy", "numpy"):
            (isolated / entry.name).symlink_to(entry)
    return isolated


async def test_built_extension_installs_and_serves_on_its_own(blendbus_server, tmp_path):
    zip_path = build(tmp_path, target_platform="linux-x64")[0]
    assert zip_path.name == f"blendbus-{__version__}-linux_x64.zip"  # as Blender's --split-platforms names it
    stop = tmp_path / "stop"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["BLENDER_USER_RESOURCES"] = str(tmp_path / "user")
    async with serve_http(blendbus_server) as url:
        log = open(tmp_path / "gui.log", "w")
        proc = subprocess.Popen([sys.executable, "-S", "-c", GUI_PEER, str(only_bpy(tmp_path)), str(zip_path),
                                 url, str(stop)], stdout=log, stderr=subprocess.STDOUT, env=env)
        try:
            for _ in range(1200):
                if "gui-peer" in await peer_uuids(blendbus_server) or proc.poll() is not None:
                    break
                await asyncio.sleep(0.05)
            assert "gui-peer" in await peer_uuids(blendbus_server), (tmp_path / "gui.log").read_text()
            async with connect(url) as client:
                env_ = await call_envelope(client, "blender_execute_code", {"code": "print(len(bpy.data.objects))"})
                assert env_["status"] == p.COMPLETED and env_["result"] == "3\n"
                info = await call_envelope(client, "blender_get_scene_info")  # handlers bundled in the zip
                assert info["status"] == p.COMPLETED and info["result"]["object_count"] == 3
        finally:
            stop.touch()  # lets the script report, then leave; terminated if it does not within 30 s
            try:
                await asyncio.to_thread(proc.wait, 30)
            finally:
                await asyncio.to_thread(stop_process, proc)  # the server on this loop answers its goodbye
                log.close()
    assert "ran 2" in (tmp_path / "gui.log").read_text()


def test_an_unknown_platform_is_refused(tmp_path):
    with pytest.raises(ValueError, match="linux-x64, macos-arm64, macos-x64, windows-x64"):
        build(tmp_path, target_platform="windows-arm64")


BLENDER_EXT = Path(importlib.util.find_spec("bpy").submodule_search_locations[0]) / "5.0" / "scripts" / \
    "addons_core" / "bl_pkg" / "cli" / "blender_ext.py" if importlib.util.find_spec("bpy") else None


def blender_ext():
    """Blender's own extension tool (bl_pkg/cli/blender_ext.py), as a module."""
    spec = importlib.util.spec_from_file_location("blender_ext", BLENDER_EXT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_each_platforms_zip_holds_what_the_addon_imports_built_for_that_platform(tmp_path):
    zips = build(tmp_path, target_platform="all")
    assert sorted(z.name for z in zips) == sorted(f"blendbus-{__version__}-{p.file_suffix}.zip"
                                                  for p in PLATFORMS.values())
    tool = blender_ext()
    needed = {_key(d.metadata["Name"]) for d in imported_distributions()}
    modules = _imported_modules()
    for platform_name, target in PLATFORMS.items():
        path = tmp_path / f"blendbus-{__version__}-{target.file_suffix}.zip"
        with zipfile.ZipFile(path) as zf:
            manifest = tomllib.loads(zf.read("blender_manifest.toml").decode())
            wheels = {name: zf.read(name) for name in zf.namelist() if name.startswith("wheels/")}
        assert manifest["platforms"] == [platform_name] and manifest["version"] == __version__
        assert sorted(manifest["wheels"]) == sorted(f"./{w}" for w in wheels)
        for wheel in wheels:  # Blender's own test of which wheel goes on which platform
            assert tool.blender_platform_compatible_with_wheel_platform_from_filepath(platform_name, wheel), wheel
        bundled = {_key(Path(w).name.split("-")[0]) for w in wheels}
        assert needed <= bundled, needed - bundled  # every distribution the addon imports is there...
        assert not bundled & {"redis", "hiredis", "uvloop", "httptools", "bpy", "numpy"}  # ...and nothing of the server's
        provided = {top for data in wheels.values() for top in _top_level(data)}
        missing = {m for m in modules if m not in provided and m not in ("bpy", "numpy", "blendbus_addon")}
        assert not missing, (platform_name, missing)  # every module it imports comes from a wheel for that platform
        checked = subprocess.run([sys.executable, str(BLENDER_EXT), "validate", str(path)], capture_output=True,
                                 text=True, timeout=120)
        assert checked.returncode == 0, checked.stdout + checked.stderr  # Blender's own manifest validation
    assert b"pywin32" in b"".join(Path(w).name.encode() for w in
                                  zipfile.ZipFile(zips[[z.name for z in zips].index(
                                      f"blendbus-{__version__}-windows_x64.zip")]).namelist())  # a Windows-only need


def _key(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _imported_modules() -> set[str]:
    """The top-level modules the addon's modules import that are not the standard library's."""
    script = ("import importlib, json, pkgutil, sys\nimport blendbus_addon\n"
              "for i in pkgutil.iter_modules(blendbus_addon.__path__):\n"
              "    importlib.import_module('blendbus_addon.' + i.name)\n"
              "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules} - set(sys.stdlib_module_names))))")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, check=True)
    from importlib.metadata import packages_distributions

    owners = packages_distributions()  # modules that no distribution owns are Blender's own (bpy's)
    return {m for m in json.loads(done.stdout) if m in owners and not m.startswith("_")
            and not {_key(d) for d in owners[m]} & NOT_BUNDLED}  # left out on purpose, each for its reason


def _top_level(wheel: bytes) -> set[str]:
    """The top-level modules a wheel installs."""
    with zipfile.ZipFile(io.BytesIO(wheel)) as zf:
        names = [n for n in zf.namelist() if ".dist-info/" not in n and ".data/" not in n]
    return {n.split("/")[0].removesuffix(".py").split(".")[0] for n in names}


def test_the_addon_spells_the_one_version():
    """Blender reads bl_info and blender_manifest.toml without running code, so both spell the version;
    they are blendbus.__version__, the one declaration."""
    import ast

    addon = Path(__file__).parent.parent / "addon"
    tree = ast.parse((addon / "__init__.py").read_text())
    bl_info = next(ast.literal_eval(node.value) for node in tree.body
                   if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) == "bl_info")
    assert bl_info["version"] == tuple(int(part) for part in __version__.split("."))
    assert tomllib.loads((addon / "blender_manifest.toml").read_text())["version"] == __version__
