"""Automated accessibility checks in the browser tests: axe-core (pinned in tests/node/package.json,
installed by scripts/test-prereqs.sh), run inside the page or frame under test."""

from __future__ import annotations

from pathlib import Path
from typing import Any

AXE = Path(__file__).parent / "node" / "node_modules" / "axe-core" / "axe.min.js"
RUN = """async () => (await axe.run(document, {resultTypes: ["violations"]})).violations.map(
    (v) => `${v.impact}: ${v.id} (${v.help}) at ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`)"""


async def violations(target: Any) -> str:
    """axe-core's WCAG violations in a Playwright page or frame, a line each ("" when none is found)."""
    assert AXE.is_file(), "axe-core is not installed: run bash scripts/test-prereqs.sh"
    await target.add_script_tag(path=str(AXE))
    return "\n".join(await target.evaluate(RUN))
