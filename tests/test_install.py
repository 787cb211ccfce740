"""`blendbus install HOST`: each host's configuration, written in that host's own format and merged into
its file, is read back as the host documents it, then started (stdio) or reached (HTTP) by the official
TypeScript SDK client, as the host would; and the stdio entry works whatever holds its port."""

from __future__ import annotations

import json
import socket
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from blendbus.client import connect
from blendbus.testing import PythonPeer, serve_http
from blendbus.testing.blender import needs_bpy
from blendbus.testing.replicas import free_port

from .nodeclients import run_node

pytestmark = pytest.mark.anyio
HOSTS = ("claude-desktop", "claude-code", "cursor", "vscode")


def documented_entry(host: str, config: dict[str, Any], name: str = "blender") -> dict[str, Any]:
    """The entry `name`, read as the host documents its file: the key it keeps servers under, and the
    fields a stdio or an HTTP entry has there. AssertionError on anything else."""
    servers = config["servers" if host == "vscode" else "mcpServers"]
    entry = servers[name]
    kind = entry.get("type") or ("http" if "url" in entry else "stdio")
    if host in ("claude-code", "vscode"):
        assert entry["type"] in ("stdio", "http"), entry  # both name the transport
    else:
        assert "type" not in entry, entry
    if kind == "stdio":
        assert isinstance(entry["command"], str) and Path(entry["command"]).is_absolute()
        assert all(isinstance(a, str) for a in entry["args"]) and set(entry) <= {"type", "command", "args", "env"}
        assert all(isinstance(v, str) for v in entry.get("env", {}).values())
    else:
        assert host != "claude-desktop", "Claude Desktop's file takes stdio servers only"
        assert entry["url"].startswith("http") and set(entry) <= {"type", "url", "headers"}
    return entry


def install(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "blendbus", "install", *args], capture_output=True, text=True,
                          timeout=60)


@pytest.mark.parametrize("host", HOSTS)
def test_each_host_gets_its_own_format_merged_into_its_file(host, tmp_path):
    path = tmp_path / "config.json"
    key = "servers" if host == "vscode" else "mcpServers"
    before = {key: {"notes": {"command": "/usr/bin/notes-mcp", "args": []}}, "theme": "dark"}
    path.write_text(json.dumps(before))
    done = install(host, "--config", str(path))
    assert done.returncode == 0, done.stderr
    config = json.loads(path.read_text())
    assert config["theme"] == "dark" and config[key]["notes"] == before[key]["notes"]  # the rest is kept
    local = documented_entry(host, config)
    assert local["args"] == ["serve", "--stdio", "--embedded-blender"]
    backups = list(tmp_path.glob("config.json.*.bak"))
    assert len(backups) == 1 and json.loads(backups[0].read_text()) == before
    done = install(host, "--config", str(path), "--url", "https://bus.example/mcp", "--token", "tok-secret")
    assert done.returncode == 0, done.stderr
    remote = documented_entry(host, json.loads(path.read_text()))
    if host == "claude-desktop":  # stdio only: a relay to the hosted bus, the token in its environment
        assert remote["args"] == ["relay", "--server", "https://bus.example/mcp"]
        assert remote["env"] == {"BLENDBUS_TOKEN": "tok-secret"}
    else:
        assert remote["url"] == "https://bus.example/mcp"
        assert remote["headers"] == {"Authorization": "Bearer tok-secret"}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600  # it holds a token now
    printed = install(host, "--print")  # nothing written, the entry shown
    assert printed.returncode == 0 and documented_entry(host, json.loads(printed.stdout))
    assert len(list(tmp_path.glob("config.json.*.bak"))) == 2


def test_a_broken_file_is_named_and_left_alone(tmp_path):
    path = tmp_path / "claude_desktop_config.json"
    path.write_text("{ not json")
    done = install("claude-desktop", "--config", str(path))
    assert done.returncode == 2 and "is not valid JSON" in done.stderr and path.read_text() == "{ not json"


def test_the_generic_form_prints(tmp_path):
    done = install("mcp-json")
    assert done.returncode == 0 and documented_entry("cursor", json.loads(done.stdout))


def _host_env(tmp_path: Path, port: int) -> dict[str, str]:
    """What the test adds to the host's environment: a port and folders of its own."""
    return {"BLENDBUS_PORT": str(port), "BLENDBUS_STATE_DIR": str(tmp_path / "state"), "TMPDIR": str(tmp_path)}


@needs_bpy
async def test_the_installed_stdio_entry_serves_a_real_client(tmp_path):
    install("claude-desktop", "--config", str(tmp_path / "c.json"))
    entry = documented_entry("claude-desktop", json.loads((tmp_path / "c.json").read_text()))
    seen = await run_node("config-entry", json.dumps(entry), json.dumps({
        "tool": "blender_get_scene_info", "env": _host_env(tmp_path, free_port())}))
    assert seen["connected"] and "blender_execute_code" in seen["tools"], seen
    assert seen["result"]["status"] == "completed" and seen["result"]["result"]["object_count"] == 3


async def test_remote_entries_reach_a_hosted_bus(blendbus_server, tmp_path):
    """The HTTP entry (VS Code) and the relay entry (Claude Desktop) reach the same bus with the token."""
    async with serve_http(blendbus_server, tokens={"tok-alice": "alice"}) as url, \
            PythonPeer(lambda: connect(url, "tok-alice"), uuid="alice-blender"):
        for host in ("vscode", "claude-desktop"):
            path = tmp_path / f"{host}.json"
            assert install(host, "--config", str(path), "--url", url, "--token", "tok-alice").returncode == 0
            entry = documented_entry(host, json.loads(path.read_text()))
            seen = await run_node("config-entry", json.dumps(entry), json.dumps({"tool": "blender_list_clients"}))
            assert seen["connected"], seen
            assert [c["client_uuid"] for c in seen["result"]["clients"]] == ["alice-blender"], (host, seen)


async def test_the_stdio_entry_uses_a_blendbus_server_that_holds_its_port(blendbus_server, tmp_path):
    """`blendbus serve` already runs (a GUI Blender on its bus): the host's stdio server serves that bus."""
    port = free_port()
    async with serve_http(blendbus_server, port=port) as url, \
            PythonPeer(lambda: connect(url), uuid="gui-blender"):
        entry = json.loads(install("mcp-json").stdout)["mcpServers"]["blender"]
        seen = await run_node("config-entry", json.dumps(entry), json.dumps({
            "tool": "blender_list_clients", "env": _host_env(tmp_path, port)}))
    assert seen["connected"] and [c["client_uuid"] for c in seen["result"]["clients"]] == ["gui-blender"], seen


async def test_the_stdio_entry_names_another_program_on_its_port(tmp_path):
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        entry = json.loads(install("mcp-json").stdout)["mcpServers"]["blender"]
        seen = await run_node("config-entry", json.dumps(entry), json.dumps({
            "tool": "blender_list_clients", "env": _host_env(tmp_path, port)}))
    assert not seen["connected"] and f"port {port}" in seen["error"] and '"--port", "0"' in seen["error"], seen
    assert "Connection closed" not in seen["error"]
