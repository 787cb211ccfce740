#!/usr/bin/env bash
# Create .venv and install blendbus, its four plugins and the test/peer extras (idempotent).
set -euo pipefail
cd "$(dirname "$0")/.."

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

stamp=.venv/.blendbus-installed
if [ -f "$stamp" ] && [ -z "$(find pyproject.toml plugins/*/pyproject.toml -newer "$stamp" 2>/dev/null)" ]; then
  exit 0
fi
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e ".[test]" \
  -e plugins/scene -e plugins/polyhaven -e plugins/sketchfab -e plugins/rodin
touch "$stamp"
