"""The scene plugin on the older Blenders it supports, 4.2 LTS and 4.5 LTS: each in a venv of its own
with that bpy (`scripts/bootstrap.sh`), its tests run there by pytest. The rest of the suite runs on
Blender 5.0 (bpy 5.0.1)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
OLDER_BLENDERS = ("4.2.0", "4.5.15")
"""The bpy releases of the older Blender LTS lines the scene plugin supports (plugins/scene/README.md)."""

pytestmark = pytest.mark.slow


@pytest.mark.timeout(1800)
@pytest.mark.parametrize("version", OLDER_BLENDERS)
def test_the_scene_plugin_passes_on_an_older_blender(version):
    venv = ROOT / ".venvs" / f"bpy-{version}"
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTEST_")}
    setup = subprocess.run(["bash", "scripts/bootstrap.sh", "test"], cwd=ROOT, capture_output=True, text=True,
                           env={**env, "VENV": str(venv), "BPY": version}, timeout=1200)
    assert setup.returncode == 0, setup.stderr[-3000:]
    run = subprocess.run([str(venv / "bin" / "python"), "-m", "pytest", "-q", "plugins/scene"], cwd=ROOT,
                         capture_output=True, text=True, env=env, timeout=1200)
    # Exit 5 (no test collected) fails as any other code would.
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    print(f"bpy {version}: {run.stdout.strip().splitlines()[-1]}")
