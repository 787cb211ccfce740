"""Plugin loading with real packages found through real entry points (a dist-info on sys.path)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from blendbus import Command, DeclarationError, Preference
from blendbus.plugins import load_plugins

GOOD = '''
from blendbus import Command, Preference, hookimpl

@hookimpl
def register_preferences(register):
    register(Preference("{name}.enabled", "bool", False, "switch"))

@hookimpl
def register_commands(register):
    register(Command(name="{tool}", description="d", handler="{name}.addon.handlers:go", gate="{name}.enabled"))
'''


def make_dist(root: Path, name: str, source: str, version: str = "1.2.3") -> None:
    """A minimal installed distribution: a package plus a dist-info declaring a blendbus entry point."""
    pkg = root / name
    (pkg / "addon").mkdir(parents=True)
    (pkg / "__init__.py").write_text(textwrap.dedent(source))
    (pkg / "addon" / "__init__.py").write_text("")
    (pkg / "addon" / "handlers.py").write_text("def go():\n    return 'went'\n")
    info = root / f"{name}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(f"[blendbus]\n{name} = {name}\n")


@pytest.fixture
def plugin_path(tmp_path, monkeypatch):
    make_dist(tmp_path, "goodplug", GOOD.format(name="goodplug", tool="good_tool"))
    make_dist(tmp_path, "brokenplug", "raise ImportError('missing dependency: frobnicate')\n")
    make_dist(tmp_path, "otherplug", GOOD.format(name="otherplug", tool="good_tool"))
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def by_name(plugins):
    return {p.name: p for p in plugins.plugins}


def test_good_broken_and_clashing_plugins(plugin_path):
    plugins = load_plugins(env={})
    found = by_name(plugins)
    good, broken, clash = found["goodplug"], found["brokenplug"], found["otherplug"]
    assert good.error is None and good.version == "1.2.3" and good.distribution == "goodplug"
    assert plugins.commands["good_tool"].gate == "goodplug.enabled"
    assert "missing dependency: frobnicate" in broken.error
    assert "'goodplug'" in clash.error and "'otherplug'" in clash.error and "blender_good_tool" in clash.error
    assert plugins.owner["good_tool"] is good
    # Everything else still loads: the core and the bundled plugins.
    assert "execute_code" in plugins.commands and found["core"].error is None
    assert {"get_scene_info", "get_polyhaven_status"} <= set(plugins.commands)


def test_selecting_plugins_by_environment(plugin_path):
    only = load_plugins(env={"BLENDBUS_LOAD_PLUGINS": "goodplug"})
    assert set(by_name(only)) == {"core", "goodplug"}
    without = load_plugins(env={"BLENDBUS_DISABLE_PLUGINS": "goodplug, brokenplug"})
    names = set(by_name(without))
    assert "goodplug" not in names and "brokenplug" not in names and by_name(without)["otherplug"].error is None


def test_declarations_are_checked_when_built():
    with pytest.raises(DeclarationError, match="name must match"):
        Command(name="Bad-Name", description="d", handler="m:f")
    with pytest.raises(DeclarationError, match="handler must look like"):
        Command(name="ok", description="d", handler="not a handler")
    with pytest.raises(DeclarationError, match="valid JSON schema"):
        Command(name="ok", description="d", handler="m:f", params={"type": "object", "properties": {"x": {"type": 7}}})
    with pytest.raises(DeclarationError, match="reserved"):
        Command(name="ok", description="d", handler="m:f", params={"type": "object", "properties": {"target_uuid": {}}})
    with pytest.raises(DeclarationError, match="not one of"):
        Preference("x.mode", "enum", "C", choices=("A", "B"))


def test_a_gate_must_name_a_declared_preference(tmp_path, monkeypatch):
    make_dist(tmp_path, "gateless", '''
from blendbus import Command, hookimpl

@hookimpl
def register_commands(register):
    register(Command(name="gateless_tool", description="d", handler="gateless.addon.handlers:go", gate="nope.enabled"))
''')
    monkeypatch.syspath_prepend(str(tmp_path))
    found = by_name(load_plugins(env={}))
    assert "gate 'nope.enabled' is not a declared preference" in found["gateless"].error


def test_cli_reports_broken_plugins_by_name(plugin_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(plugin_path), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, "-m", "blendbus", "plugins", "--json"], env=env,
                         capture_output=True, text=True, timeout=120)
    report = json.loads(out.stdout)
    plugins = {p["name"]: p for p in report["plugins"]}
    assert plugins["brokenplug"]["error"] and plugins["goodplug"]["error"] is None
    for name in ("scene", "polyhaven", "sketchfab", "rodin"):
        assert plugins[name]["version"] and plugins[name]["distribution"] == f"blendbus-{name}"
    assert out.returncode == 1  # a load error is worth a non-zero exit
    text = subprocess.run([sys.executable, "-m", "blendbus", "plugins"], env=env, capture_output=True, text=True,
                          timeout=120).stdout
    assert "brokenplug" in text and "LOAD ERROR" in text and "blender_good_tool" in text
