"""A third-party plugin from `pip install` to a tool that runs in a Blender that does not have it.

examples/blendbus-hello is installed with plain pip into a target folder of its own. The server
sees that folder; the Blender peer does not, so it runs the plugin's handlers only through live
sync. The example is also what `blendbus new-plugin hello` writes, byte for byte.
"""

from __future__ import annotations

import filecmp
import json
import os
import subprocess
import sys
from pathlib import Path


from blendbus.scaffold import render
from blendbus.testing.blender import needs_bpy, stop_process

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "blendbus-hello"


def test_the_example_is_what_the_scaffold_writes(tmp_path):
    written = render("hello", tmp_path / "hello")
    for path in written:
        rel = path.relative_to(tmp_path / "hello")
        assert filecmp.cmp(path, EXAMPLE / rel, shallow=False), f"{rel} differs from a fresh `blendbus new-plugin hello`"


def blendbus(*args: str, env: dict[str, str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "blendbus", *args], env=env, capture_output=True, text=True,
                          timeout=120, **kw)


@needs_bpy
def test_pip_install_then_the_tool_runs_in_a_blender_without_it(tmp_path):
    target = tmp_path / "site"
    pip = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index",
                          "--no-build-isolation", "--target", str(target), str(EXAMPLE)],
                         capture_output=True, text=True, timeout=300)
    assert pip.returncode == 0, pip.stderr
    with_hello = {**os.environ, "PYTHONPATH": str(target)}
    without = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}

    report = json.loads(blendbus("plugins", "--json", env=with_hello).stdout)
    hello = next(p for p in report["plugins"] if p["name"] == "hello")
    assert hello["distribution"] == "blendbus-hello" and hello["version"] == "0.1.0" and not hello["error"]
    assert all(p["name"] != "hello" for p in json.loads(blendbus("plugins", "--json", env=without).stdout)["plugins"])

    server = subprocess.Popen([sys.executable, "-m", "blendbus", "serve", "--port", "0", "--state-dir",
                               str(tmp_path / "state")], env=with_hello, stderr=subprocess.PIPE, text=True)
    peer = None
    try:
        url = next(line.split()[2] for line in server.stderr if "serving" in line)
        peer = subprocess.Popen([sys.executable, "-m", "blendbus", "peer", "--server", url, "--state-dir",
                                 str(tmp_path / "peer"), "--set", "hello.enabled=true",
                                 "--set", "accept_plugin_handlers_from_server=true"],
                                env=without, stderr=subprocess.PIPE, text=True)
        assert any("connected" in line for line in peer.stderr)
        tools = blendbus("call", "blender_watch_bus", "{}", "--server", url, env=without)
        assert tools.returncode == 0
        env = json.loads(blendbus("call", "blender_hello_greet", '{"name": "Ada"}', "--server", url,
                                  env=without).stdout)
        assert env["status"] == "completed", env
        assert env["result"] == {"greeting": "hello Ada", "blender": "5.0.1", "objects": 3}
        clients = json.loads(blendbus("call", "blender_list_clients", "--server", url, env=without).stdout)
        handlers = {h["package"]: h for h in clients["clients"][0]["handlers"]}
        assert handlers["blendbus_hello.addon"]["source"] == "synced"
    finally:
        stop_process(*(p for p in (peer, server) if p is not None))
