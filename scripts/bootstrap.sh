#!/usr/bin/env bash
# Create a venv and install blendbus with its plugins and test tools (idempotent).
#   bash scripts/bootstrap.sh                 .venv: everything, with bpy 5.0.1
#   VENV=.venvs/bpy-4.2.0 BPY=4.2.0 bash scripts/bootstrap.sh
#                                             another venv: core + scene plugin + test tools + that bpy
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${VENV:-.venv}"
BPY="${BPY:-}"

PY="${PYTHON:-}"
if [ -z "$PY" ]; then
  for candidate in python3.11 python3; do
    if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
      PY="$candidate"; break
    fi
  done
fi
if [ -z "$PY" ]; then
  echo "blendbus needs Python 3.11 (Blender's bpy module is built for it)" >&2
  exit 1
fi

stamp="$VENV/.blendbus-installed"
if [ -f "$stamp" ] && [ -z "$(find pyproject.toml plugins/*/pyproject.toml -newer "$stamp" 2>/dev/null)" ]; then
  exit 0
fi
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --upgrade pip
if [ -z "$BPY" ]; then
  "$VENV/bin/python" -m pip install --quiet -e ".[test]" \
    -e plugins/scene -e plugins/polyhaven -e plugins/sketchfab -e plugins/rodin
else
  "$VENV/bin/python" -m pip install --quiet -e . -e plugins/scene "bpy==$BPY" pytest pytest-timeout hypothesis
fi
touch "$stamp"
