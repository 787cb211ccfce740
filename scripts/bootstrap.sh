#!/usr/bin/env bash
# Create a venv and install blendbus with its plugins and Blender as a Python module (idempotent).
# Python packages only: nothing here needs root.
#   bash scripts/bootstrap.sh                 .venv: blendbus, the six plugins, bpy 5.0.1 (what serving needs)
#   bash scripts/bootstrap.sh test            .venv: the same, plus what the tests drive from Python
#   VENV=.venvs/bpy-4.2.0 BPY=4.2.0 bash scripts/bootstrap.sh test
#                                             another venv: core + scene plugin + test tools + that bpy
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${VENV:-.venv}"
BPY="${BPY:-}"
FOR="${1:-serve}"

PY="${PYTHON:-}"
if [ -z "$PY" ]; then
  for candidate in python3.11 python3; do
    if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
      PY="$candidate"; break
    fi
  done
fi
if [ -z "$PY" ]; then
  echo "blendbus with its headless Blender needs Python 3.11 (Blender's bpy module is built for it);" \
       "the server alone runs on 3.11 to 3.13: pip install blendbus" >&2
  exit 1
fi

stamp="$VENV/.blendbus-installed-$FOR"
# A new version (declared in each package's __init__.py) is new metadata: reinstall then too.
if [ -f "$stamp" ] && [ -z "$(find pyproject.toml plugins/*/pyproject.toml core/blendbus/__init__.py \
    plugins/*/blendbus_*/__init__.py -newer "$stamp" 2>/dev/null)" ]; then
  exit 0
fi
# Build backends warn about their own deprecations while installing: nothing a user can act on.
export PYTHONWARNINGS="ignore"
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --upgrade pip
extras="peer"
[ "$FOR" = "test" ] && extras="test"
if [ -z "$BPY" ]; then
  "$VENV/bin/python" -m pip install --quiet -e ".[$extras]" \
    -e plugins/scene -e plugins/polyhaven -e plugins/sketchfab -e plugins/rodin \
    -e plugins/hunyuan3d -e plugins/polypizza
else
  "$VENV/bin/python" -m pip install --quiet -e . -e plugins/scene "bpy==$BPY" pytest pytest-timeout hypothesis
fi
touch "$stamp"
