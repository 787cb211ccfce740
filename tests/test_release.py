"""What a user gets without the repository: the built packages (scripts/release.sh), installed into
clean environments the way the README says, on every Python the server supports that this machine has."""

from __future__ import annotations

import glob
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from blendbus import __version__
from blendbus.testing.blender import stop_process

ROOT = Path(__file__).resolve().parents[1]
DISTRIBUTIONS = ("blendbus", "blendbus_scene", "blendbus_polyhaven", "blendbus_sketchfab", "blendbus_rodin",
                 "blendbus_hunyuan3d", "blendbus_polypizza")


def _pythons() -> list[str]:
    """The Pythons the server supports (3.11 to 3.13) that this machine has: the one running the tests,
    and a 3.12 and a 3.13 where there are ones that work."""
    found = [sys.executable]
    for minor in (12, 13):
        candidates = [shutil.which(f"python3.{minor}"), *sorted(glob.glob(f"/root/.pyenv/versions/3.{minor}.*/bin/python3.{minor}"))]
        for path in filter(None, candidates):
            if subprocess.run([path, "-c", "import ssl, venv"], capture_output=True).returncode == 0:
                found.append(path)
                break
    return found


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    done = subprocess.run(["bash", "scripts/release.sh"], cwd=ROOT, env={**os.environ, "OUT": str(out)},
                          capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, done.stderr[-4000:]
    return out


def _venv(python: str, where: Path) -> Path:
    subprocess.run([python, "-m", "venv", str(where)], check=True, timeout=300)
    return where / "bin"


def _pip(bin_dir: Path, *args: str) -> None:
    done = subprocess.run([str(bin_dir / "python"), "-m", "pip", "install", "--quiet", *args], capture_output=True,
                          text=True, timeout=1800, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert done.returncode == 0, done.stderr[-4000:]


def _serve(bin_dir: Path, state: Path, *args: str) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([str(bin_dir / "blendbus"), "serve", "--port", "0", "--state-dir", str(state), *args],
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "TMPDIR": str(state.parent)})
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        found = re.search(r"serving (http://\S+/mcp)", line)
        if found:
            return proc, found.group(1)
        assert proc.poll() is None, proc.stderr.read()
    raise AssertionError("the server did not start")


def _call(bin_dir: Path, url: str, tool: str, arguments: dict | None = None) -> dict:
    done = subprocess.run([str(bin_dir / "blendbus"), "call", tool, json.dumps(arguments or {}), "--server", url],
                          capture_output=True, text=True, timeout=300)
    return json.loads(done.stdout)


def test_the_release_holds_every_distribution_and_addon(dist):
    names = sorted(p.name for p in dist.iterdir())
    for stem in DISTRIBUTIONS:
        assert any(n.startswith(f"{stem}-") and n.endswith("-py3-none-any.whl") for n in names), stem
        assert any(n.startswith(f"{stem}-") and n.endswith(".tar.gz") for n in names), stem
    for platform in ("linux_x64", "macos_arm64", "macos_x64", "windows_x64"):
        assert f"blendbus-{__version__}-{platform}.zip" in names


def test_everything_installs_from_the_built_packages_and_serves_with_its_own_blender(dist, tmp_path):
    bin_dir = _venv(sys.executable, tmp_path / "venv")  # Python 3.11: Blender's
    _pip(bin_dir, "--find-links", str(dist), "blendbus[all]")
    plugins = json.loads(subprocess.run([str(bin_dir / "blendbus"), "plugins", "--json"], capture_output=True,
                                        text=True, timeout=120, check=True).stdout)
    assert sorted(p["name"] for p in plugins["plugins"]) == sorted(
        ["core", "scene", "polyhaven", "sketchfab", "rodin", "hunyuan3d", "polypizza"])
    assert all(p["version"] and not p["error"] for p in plugins["plugins"]), plugins
    proc, url = _serve(bin_dir, tmp_path / "state", "--embedded-blender")
    try:
        env = _call(bin_dir, url, "blender_get_scene_info")
        assert env["status"] == "completed" and env["result"]["object_count"] == 3, env
    finally:
        stop_process(proc)


@pytest.mark.parametrize("python", _pythons())
def test_the_server_alone_installs_without_blender_and_serves_gui_peers(dist, tmp_path, python):
    bin_dir = _venv(python, tmp_path / "venv")
    _pip(bin_dir, "--find-links", str(dist), "blendbus")
    listed = subprocess.run([str(bin_dir / "python"), "-m", "pip", "list", "--format=json"], capture_output=True,
                            text=True, timeout=120, check=True).stdout
    assert "bpy" not in {p["name"] for p in json.loads(listed)}
    proc, url = _serve(bin_dir, tmp_path / "state", "--embedded-blender")  # asked for, without Blender installed
    try:
        env = _call(bin_dir, url, "blender_execute_code", {"code": "print(1)"})
        assert env["status"] == "no_client" and "pip install 'blendbus[peer]'" in env["error"], env  # what to install
        peer = subprocess.Popen([str(bin_dir / "python"), "-c", PYTHON_PEER, url], stdout=subprocess.PIPE, text=True)
        try:
            assert peer.stdout.readline().strip() == "connected"
            env = _call(bin_dir, url, "blender_execute_code", {"code": "print(6 * 7)"})
            assert env["status"] == "completed" and env["result"] == "42\n", env  # a peer, as a GUI Blender is
        finally:
            stop_process(peer)
    finally:
        stop_process(proc)


PYTHON_PEER = """
import asyncio, sys
from blendbus.client import connect
from blendbus.testing import PythonPeer

async def main():
    async with PythonPeer(lambda: connect(sys.argv[1])):
        print("connected", flush=True)
        await asyncio.Event().wait()

asyncio.run(main())
"""


def test_uvx_runs_the_built_wheel(dist, tmp_path):
    uvx = Path(sys.executable).parent / "uvx"
    wheel = next(dist.glob(f"blendbus-{__version__}-py3-none-any.whl"))
    done = subprocess.run([str(uvx), "--from", str(wheel), "blendbus", "install", "mcp-json"], capture_output=True,
                          text=True, timeout=900, env={**os.environ, "UV_CACHE_DIR": str(tmp_path / "uv-cache")})
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout)["mcpServers"]["blender"]["args"] == ["serve", "--stdio", "--embedded-blender"]


def test_every_package_of_the_tree_ships_and_the_all_extra_takes_every_plugins_version():
    """setuptools ships only the packages pyproject.toml lists, and `blendbus[all]` pins each bundled
    plugin to a range: a package added to the tree, or a plugin's new version, must be there too."""
    import tomllib

    from packaging.requirements import Requirement

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    listed = set(project["tool"]["setuptools"]["packages"])
    for root, name in ((ROOT / "core" / "blendbus", "blendbus"), (ROOT / "addon", "blendbus_addon")):
        for init in root.rglob("__init__.py"):
            if "templates" not in init.parts:
                package = ".".join([name, *init.parent.relative_to(root).parts])
                assert package in listed, f"pyproject.toml [tool.setuptools] packages lacks {package}"
    pins = {Requirement(r).name: Requirement(r).specifier for r in project["project"]["optional-dependencies"]["all"]}
    for plugin in (ROOT / "plugins").iterdir():
        version = re.search(r'^__version__ = "(.+)"', next(plugin.glob("blendbus_*/__init__.py")).read_text(), re.M)
        dist = f"blendbus-{plugin.name}"
        assert dist in pins and version and pins[dist].contains(version.group(1)), (dist, version, pins.get(dist))
