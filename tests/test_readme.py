"""The README's blocks work the way a reader uses them: pasted whole into a shell."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from blendbus.testing.blender import needs_bpy
from blendbus.testing.replicas import free_port

ROOT = Path(__file__).resolve().parents[1]


def block_under(heading: str) -> str:
    """The first ```sh block after `heading` in the README."""
    text = (ROOT / "README.md").read_text()
    after = text[text.index(f"## {heading}\n"):]
    return re.search(r"```sh\n(.*?)```", after, re.S).group(1)


@needs_bpy
def test_the_scale_out_block_works_pasted_whole(blendbus_redis, tmp_path):
    one, two = free_port(), free_port()
    script = (block_under("Scale out")
              .replace("redis://127.0.0.1:6379/0?prefix=studio", blendbus_redis)
              .replace(".venv/bin/blendbus", f"{sys.executable} -m blendbus")
              .replace("8765", str(one)).replace("8766", str(two))
              .replace("/tmp/replica-2", str(tmp_path / "replica-2")))
    done = subprocess.run(["bash", "-c", "trap 'kill $(jobs -p) 2>/dev/null; wait' EXIT\n" + script],
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "BLENDBUS_STATE_DIR": str(tmp_path / "state"), "TMPDIR": str(tmp_path)})
    assert done.returncode == 0, done.stderr[-3000:]
    assert '"result": "42\\n"' in done.stdout and '"status": "completed"' in done.stdout, done.stdout
