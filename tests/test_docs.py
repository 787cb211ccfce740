"""Docs that quote the code are regenerated from it and compared (BLENDBUS_UPDATE_DOCS=1 rewrites them)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from blendbus.testing.kit import BUNDLED

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "docs" / "plugins" / "reference-output.md"


def generate() -> str:
    env = {**os.environ, "BLENDBUS_LOAD_PLUGINS": BUNDLED}
    report = subprocess.run([sys.executable, "-m", "blendbus", "plugins", "--json"], env=env,
                            capture_output=True, text=True, timeout=120, check=True).stdout
    from blendbus.testing import make_server

    server = make_server(env={"BLENDBUS_LOAD_PLUGINS": BUNDLED})
    rows = ["| tool | gate | description |", "|---|---|---|"]
    for tool in sorted(server.tools.app_tools, key=lambda t: t.name):
        cmd = server.plugins.by_tool(tool.name)
        gate = f"`{cmd.gate}`" if cmd and cmd.gate else ""
        only = f" (MCP Apps: called by the `{cmd.app}` view only)" if cmd and cmd.app_only else ""
        rows.append(f"| `{tool.name}` | {gate} | {tool.description.splitlines()[0]}{only} |")
    return (
        "# Reference output\n\n"
        "Generated from the code by `BLENDBUS_UPDATE_DOCS=1 pytest tests/test_docs.py`; CI fails when it"
        " is stale.\n\n"
        "## `blendbus plugins --json` (core and the six bundled plugins)\n\n"
        f"```json\n{json.dumps(json.loads(report), indent=2)}\n```\n\n"
        "## Tools\n\n" + "\n".join(rows) + "\n"
    )


def test_reference_output_is_current():
    fresh = generate()
    if os.environ.get("BLENDBUS_UPDATE_DOCS"):
        REFERENCE.write_text(fresh)
    assert REFERENCE.read_text() == fresh, "docs/plugins/reference-output.md is stale: BLENDBUS_UPDATE_DOCS=1 pytest tests/test_docs.py"
