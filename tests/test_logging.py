"""A job's log lines (`job.log`, and Python warnings raised while it runs) reach the client that
called it as MCP log messages, at the level that client chose: `logging/setLevel` for a session-era
(2025-11-25) client, the per-request opt-in for a 2026-07-28 one. Real clients over real HTTP, the
add-on's transport and executor (the Python test peer), Redis replicas, and a real Blender."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from blendbus import protocol as p
from blendbus.client import connect
from blendbus.testing import PythonPeer, call_envelope, make_server, serve_http
from blendbus.testing.blender import blender_peer, needs_bpy

pytestmark = pytest.mark.anyio
LINES = [[level, f"said at {level}"] for level in ("debug", "info", "notice", "warning", "error")]
WARNING_LINE = "UserWarning: a thing the caller should know about"


class Heard:
    """A client's logging_callback: every log message it got."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, str | None, str]] = []

    async def __call__(self, params: Any) -> None:
        self.lines.append((params.level, params.logger, str(params.data)))

    def levels(self) -> list[str]:
        return [level for level, _, data in self.lines if data.startswith("said at ")]

    def warned(self) -> bool:
        return any(level == "warning" and data.startswith(WARNING_LINE) for level, _, data in self.lines)


async def logged_call(url: str, mode: str, **options: Any) -> Heard:
    heard = Heard()
    async with connect(url, mode=mode, logging_callback=heard, **options) as client:
        env = await call_envelope(client, "blender_test_log", {"lines": LINES})
        assert env["status"] == p.COMPLETED and env["result"] == len(LINES)
    assert all(logger == "blender" for _, logger, _ in heard.lines)
    return heard


async def test_a_session_era_client_hears_what_its_level_lets_through(blendbus_server):
    async with serve_http(blendbus_server) as url, PythonPeer(lambda: connect(url)):
        default = await logged_call(url, "legacy")
        assert default.levels() == ["info", "notice", "warning", "error"] and default.warned()  # info until set

        heard = Heard()
        async with connect(url, mode="legacy", logging_callback=heard) as client:
            assert (await client.set_logging_level("warning")).model_dump(exclude_none=True) in ({}, {"meta": None})
            await call_envelope(client, "blender_test_log", {"lines": LINES})
            assert heard.levels() == ["warning", "error"] and heard.warned()
            await client.set_logging_level("emergency")
            await call_envelope(client, "blender_test_log", {"lines": LINES})
            assert heard.levels() == ["warning", "error"]  # nothing new: every line is below emergency

        others = await logged_call(url, "legacy")  # one client's level is its own
        assert others.levels() == ["info", "notice", "warning", "error"]


async def test_a_2026_client_hears_only_what_each_request_asks_for(blendbus_server):
    async with serve_http(blendbus_server) as url, PythonPeer(lambda: connect(url)):
        silent = await logged_call(url, "auto")
        assert silent.lines == []  # no opt-in, no log messages (SEP-2577)
        asked = await logged_call(url, "auto", log_level="notice")
        assert asked.levels() == ["notice", "warning", "error"] and asked.warned()


async def test_log_lines_cross_replicas(blendbus_redis: str, blendbus_extra_plugins, tmp_path: Path) -> None:
    """Two servers on one Redis: the peer replies to the first, the caller waits on the second."""
    one, two = (make_server(blendbus_extra_plugins, state_dir=tmp_path / f"r{n}", backend=blendbus_redis)
                for n in range(2))
    async with serve_http(one) as near, serve_http(two) as far, PythonPeer(lambda: connect(near), uuid="logger"):
        heard = await logged_call(far, "legacy")
    assert heard.levels() == ["info", "notice", "warning", "error"] and heard.warned()


async def test_a_peer_cannot_log_outside_a_running_update(blendbus_server):
    """A log line is a `running` update with a known level: anything else is refused with why."""
    for status, level in ((p.RUNNING, "loud"), (p.COMPLETED, "info")):
        with pytest.raises(ValueError, match="log line"):
            await blendbus_server.hub.job_update("local", "peer", "token", "j-1", status, message="x", level=level)


@needs_bpy
async def test_blenders_warnings_reach_the_caller(tmp_path):
    """A script that triggers a Python warning in real Blender: the caller hears it as a log message,
    and the script's output still carries it."""
    server = make_server(state_dir=tmp_path / "state")
    async with serve_http(server) as url, blender_peer(server, url, tmp_path, f"{p.CODE_GATE}=true"):
        heard = Heard()
        async with connect(url, mode="legacy", logging_callback=heard) as client:
            env = await call_envelope(client, "blender_execute_code", {"code": (
                "import warnings, bpy\n"
                "warnings.warn('scene has ' + str(len(bpy.data.objects)) + ' objects', RuntimeWarning)\n"
                "print('done')\n")})
        assert env["status"] == p.COMPLETED and env["result"].startswith("done")
        assert any(level == "warning" and data.startswith("RuntimeWarning: scene has ") for level, _, data in heard.lines)


async def test_blendbus_call_prints_the_jobs_log_lines_on_stderr(blendbus_server):
    import asyncio
    import json
    import sys

    async with serve_http(blendbus_server) as url, PythonPeer(lambda: connect(url)):
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "blendbus", "call", "blender_test_log", json.dumps({"lines": LINES}),
            "--server", url, "--log-level", "warning", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0 and json.loads(out)["status"] == p.COMPLETED
    said = err.decode().splitlines()
    assert said[:2] == ["blender warning: said at warning", "blender error: said at error"]
    assert said[2].startswith(f"blender warning: {WARNING_LINE}") and len(said) == 3


def test_the_log_levels_are_mcps_in_its_order():
    """protocol.py is stdlib-only (it ships inside the Blender extension), so it spells the levels: held to the SDK's here."""
    from typing import get_args

    import mcp_types

    assert p.LOG_LEVELS == get_args(mcp_types.LoggingLevel)
