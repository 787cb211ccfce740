"""First contact: what a new user runs into, done the way the README says, with real processes.

Two peers on one state dir, two servers on one state dir, a wrong token, a wrong URL, a taken port,
typos everywhere, a pipe closed early: each gets one clear line that says what to do.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path


from blendbus.testing.blender import needs_bpy, stop_process
from blendbus.testing.kit import start_server


def blendbus(*args: str, timeout: float = 60, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "blendbus", *args], capture_output=True, text=True,
                          timeout=timeout, **kw)


def call(url: str, tool: str, arguments: dict | None = None, *extra: str) -> dict:
    out = blendbus("call", tool, json.dumps(arguments or {}), "--server", url, *extra)
    return json.loads(out.stdout)


def wait_for(predicate, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


@needs_bpy
def test_two_peers_on_one_state_dir_get_their_own_uuids_and_look_complete_at_once(tmp_path):
    server, url = start_server(tmp_path)
    state = tmp_path / "peers"  # the README's second peer and the tutorial's peer, sharing the default
    logs = [open(tmp_path / f"peer{i}.log", "w") for i in range(2)]
    peers = [subprocess.Popen([sys.executable, "-m", "blendbus", "peer", "--server", url, "--state-dir", str(state)],
                              stderr=log) for log in logs]
    try:
        wait_for(lambda: len(call(url, "blender_list_clients")["clients"]) == 2)
        clients = call(url, "blender_list_clients")["clients"]
        assert len({c["client_uuid"] for c in clients}) == 2
        for client in clients:  # gates and handler packages on the first registration, not after a reconnect
            assert client["gates"]["allow_code_execution"] == "ask" and "blendbus_scene.addon" in {
                h["package"] for h in client["handlers"]}
        for i, log in enumerate(logs):
            log.flush()
            assert "changed on disk" not in (tmp_path / f"peer{i}.log").read_text()  # no addon reload noise
        taken = clients[0]["client_uuid"]
        third = blendbus("peer", "--server", url, "--state-dir", str(state), "--uuid", taken)
        assert third.returncode == 2 and f"uuid {taken!r} is in use by another blendbus peer" in third.stderr
        stop_process(*peers)
        again = tmp_path / "again.log"
        with open(again, "w") as log:  # a restarted peer takes a remembered uuid again
            peers = [subprocess.Popen([sys.executable, "-m", "blendbus", "peer", "--server", url, "--state-dir",
                                       str(state)], stderr=log)]
            wait_for(lambda: "connected" in again.read_text())
        assert again.read_text().split()[2] in {c["client_uuid"] for c in clients}
    finally:
        stop_process(*peers, server)
        for log in logs:
            log.close()


def test_a_second_server_on_a_state_dir_takes_its_own(tmp_path):
    first, url = start_server(tmp_path)
    second = subprocess.Popen([sys.executable, "-m", "blendbus", "serve", "--port", "0", "--state-dir",
                               str(tmp_path / "state")], stderr=subprocess.PIPE, text=True)
    try:
        lines = []
        for line in second.stderr:
            lines.append(line)
            if "serving" in line:
                break
        said = "".join(lines)
        assert "is in use by another server" in said and "Pass --state-dir" in said
        assert str(tmp_path / "state" / "more" / "2") in said
    finally:
        stop_process(second, first)


def test_auth_and_url_mistakes_say_what_is_wrong(tmp_path):
    tokens = tmp_path / "tokens.json"
    token = blendbus("token", "new", "alice", "--tokens", str(tokens)).stdout.strip()
    server, url = start_server(tmp_path, "--tokens", str(tokens))
    try:
        wrong = blendbus("call", "blender_list_clients", "--server", url, "--token", "nope")
        assert wrong.returncode == 2 and "refused the token (HTTP 401)" in wrong.stderr and "--token" in wrong.stderr
        no_mcp = blendbus("call", "blender_list_clients", "--server", url.removesuffix("/mcp"), "--token", token)
        assert no_mcp.returncode == 2 and "HTTP 405" in no_mcp.stderr and "ends in /mcp" in no_mcp.stderr
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            closed = f"http://127.0.0.1:{probe.getsockname()[1]}/mcp"
        nobody = blendbus("call", "blender_list_clients", "--server", closed)
        assert nobody.returncode == 2 and "start `blendbus serve` there" in nobody.stderr
        assert "--server URL" in nobody.stderr and "BLENDBUS_SERVER" in nobody.stderr
        peer = blendbus("peer", "--server", url, "--token", "nope", "--state-dir", str(tmp_path / "p"), timeout=120)
        assert peer.returncode == 2 and "refused the token (HTTP 401)" in peer.stderr  # it stops, not retries
        assert "Traceback" not in wrong.stderr + no_mcp.stderr + nobody.stderr + peer.stderr
    finally:
        stop_process(server)


def test_a_taken_port_names_the_port_and_the_way_out(tmp_path):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        out = blendbus("serve", "--port", str(port), "--state-dir", str(tmp_path / "s"))
    assert out.returncode == 2 and f"port {port}" in out.stderr and "--port 0" in out.stderr
    assert "Traceback" not in out.stderr


def test_typos_get_a_suggestion(tmp_path):
    server, url = start_server(tmp_path)
    try:
        unknown = call(url, "blender_get_scene_inf")
        assert "did you mean 'blender_get_scene_info'" in unknown["error"]
        extra = call(url, "blender_get_object_info", {"nmae": "Cube"})
        assert "unknown argument 'nmae' (did you mean 'name'?)" in extra["error"]
    finally:
        stop_process(server)
    plugins = blendbus("plugins", env={**os.environ, "BLENDBUS_LOAD_PLUGINS": "scen"})
    assert plugins.returncode == 1 and "(did you mean 'scene'?)" in plugins.stdout + plugins.stderr
    twin = blendbus("new-plugin", "scene", "--dir", str(tmp_path / "twin"))
    assert twin.returncode == 2 and "already installed" in twin.stderr and not (tmp_path / "twin").exists()
    tools = blendbus("tools")
    assert tools.returncode == 0 and "blender_get_scene_info" in tools.stdout and "[gate: allow_code_execution]" in tools.stdout


@needs_bpy
def test_a_mistyped_peer_preference_is_named(tmp_path):
    out = blendbus("peer", "--server", "http://127.0.0.1:9/mcp", "--state-dir", str(tmp_path),
                   "--set", "allow_code_exec=true", timeout=120)
    assert out.returncode == 2 and "did you mean 'allow_code_execution'" in out.stderr


def test_a_misspelled_hook_is_a_load_error_naming_it(tmp_path):
    plugin = tmp_path / "typo_plugin.py"
    plugin.write_text("from blendbus import hookimpl\n\n@hookimpl\ndef register_command(register):\n    pass\n")
    from blendbus.plugins import load_plugins

    sys.path.insert(0, str(tmp_path))
    try:
        import typo_plugin

        found = load_plugins(extra=[("typo", typo_plugin)], env={"BLENDBUS_LOAD_PLUGINS": "typo"})
    finally:
        sys.path.remove(str(tmp_path))
    error = next(p for p in found.plugins if p.name == "typo").error
    assert "unknown hook 'register_command' (did you mean 'register_commands'?)" in error


def test_a_closed_pipe_is_not_a_traceback(tmp_path):
    head = subprocess.run(f"{sys.executable} -m blendbus tools --json | head -c 10", shell=True, capture_output=True,
                          text=True, timeout=60)
    assert "Traceback" not in head.stderr and "BrokenPipe" not in head.stderr


def test_the_peer_without_blender_says_how_to_get_it(tmp_path):
    script = "import sys; sys.modules['bpy'] = None; from blendbus.cli import main; sys.exit(main(sys.argv[1:]))"
    out = subprocess.run([sys.executable, "-c", script, "peer", "--state-dir", str(tmp_path)], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 2 and "pip install 'blendbus[peer]'" in out.stderr and "Traceback" not in out.stderr


NO_LIBXI = "raise ImportError('libXi.so.6: cannot open shared object file: No such file or directory')\n"
"""What importing bpy says on a machine without libXi (a server, a container)."""


def _without_libxi(tmp_path: Path) -> dict[str, str]:
    fake = tmp_path / "no-libxi" / "bpy"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text(NO_LIBXI)
    return {**os.environ, "PYTHONPATH": str(fake.parent)}


def test_a_missing_system_library_is_named_with_its_package(tmp_path):
    out = blendbus("peer", "--state-dir", str(tmp_path / "p"), env=_without_libxi(tmp_path))
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "libXi.so.6" in out.stderr and "`sudo apt install libxi6`" in out.stderr and "`sudo dnf install libXi`" in out.stderr


def test_an_embedded_blender_that_cannot_start_says_why_in_every_answer(tmp_path):
    server, url = start_server(tmp_path, "--embedded-blender", env=_without_libxi(tmp_path))
    try:
        log = tmp_path / "state" / "embedded-peer" / "blender.log"
        env = call(url, "blender_get_scene_info")
        assert env["status"] == "no_client" and "the embedded Blender did not start" in env["error"], env
        assert "`sudo apt install libxi6`" in env["error"] and str(log) in env["error"]
        assert "libXi.so.6" in log.read_text()
    finally:
        stop_process(server)


def test_the_example_next_steps_use_this_python(tmp_path):
    out = blendbus("new-plugin", "greeter", "--dir", str(tmp_path / "g"))
    assert out.returncode == 0 and f"{sys.executable} -m pip install" in out.stdout
    assert f"{sys.executable} -m pytest" in out.stdout and Path(tmp_path / "g" / "pyproject.toml").exists()


def test_a_lan_server_answers_the_names_it_is_told_to(tmp_path):
    """--host 0.0.0.0 --tokens refused every request addressed by hostname or LAN IP (421)."""
    import httpx2

    tokens = tmp_path / "tokens.json"
    token = blendbus("token", "new", "alice", "--tokens", str(tokens)).stdout.strip()
    proc = subprocess.Popen([sys.executable, "-m", "blendbus", "serve", "--host", "0.0.0.0", "--port", "0",
                             "--tokens", str(tokens), "--state-dir", str(tmp_path / "s"),
                             "--allowed-hosts", "studio.lan,10.1.2.3"], stderr=subprocess.PIPE, text=True)
    try:
        said, port = "", None
        while port is None or "Host headers allowed" not in said:
            line = proc.stderr.readline()
            assert line, said
            said += line
            if "serving" in line:
                port = int(line.split(":")[2].split("/")[0])
        assert "studio.lan:*" in said and "10.1.2.3:*" in said and "Origins allowed: this server's own pages" in said
        body = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/json, text/event-stream"}
        answers = {}
        for host in ("studio.lan", "10.1.2.3", "evil.example"):
            r = httpx2.post(f"http://127.0.0.1:{port}/mcp", json=body, headers={**headers, "Host": f"{host}:{port}"})
            answers[host] = r.status_code
        assert answers == {"studio.lan": 200, "10.1.2.3": 200, "evil.example": 421}
    finally:
        stop_process(proc)
