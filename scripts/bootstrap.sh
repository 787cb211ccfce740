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

if [ -z "$BPY" ]; then
  # The official TypeScript MCP SDK client and axe-core, pinned in tests/node/package-lock.json.
  if ! command -v npm >/dev/null 2>&1; then
    echo "installing Node.js and npm (Debian packages) for the TypeScript client tests" >&2
    (apt-get update -qq && apt-get install -y -qq nodejs npm >/dev/null) || { echo "need Node.js 20 and npm" >&2; exit 1; }
  fi
  # A real Redis for the Redis backend's tests: the machine's at 127.0.0.1:6379, or redis-server,
  # which the tests start themselves on a free port when none answers.
  if ! command -v redis-server >/dev/null 2>&1 && ! (exec 3<>/dev/tcp/127.0.0.1/6379) 2>/dev/null; then
    echo "installing redis-server (Debian package) for the Redis backend tests" >&2
    (apt-get update -qq && apt-get install -y -qq redis-server >/dev/null) || { echo "need redis-server" >&2; exit 1; }
  fi
  # nginx in front of replicas (docs/deploy/nginx.conf) is tested too.
  if ! command -v nginx >/dev/null 2>&1 && [ ! -x /usr/sbin/nginx ]; then
    echo "installing nginx (Debian package) for the load-balancer test" >&2
    (apt-get update -qq && apt-get install -y -qq nginx-light >/dev/null) || { echo "need nginx" >&2; exit 1; }
  fi
  # A real browser for the status page tests: Debian's chromium, driven headless.
  if ! command -v chromium >/dev/null 2>&1; then
    echo "installing chromium (Debian package) for the status page tests" >&2
    (apt-get update -qq && apt-get install -y -qq chromium >/dev/null) || { echo "need chromium" >&2; exit 1; }
  fi
  if [ ! -f tests/node/node_modules/.package-lock.json ] || [ tests/node/package-lock.json -nt tests/node/node_modules/.package-lock.json ]; then
    echo "installing the TypeScript MCP SDK client and axe-core for the tests (npm ci in tests/node)" >&2
    (cd tests/node && npm ci --no-audit --no-fund --loglevel=error) || exit 1
  fi
fi

stamp="$VENV/.blendbus-installed"
if [ -f "$stamp" ] && [ -z "$(find pyproject.toml plugins/*/pyproject.toml -newer "$stamp" 2>/dev/null)" ]; then
  exit 0
fi
# Build backends warn about their own deprecations while installing: nothing a user can act on.
export PYTHONWARNINGS="ignore"
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --upgrade pip
if [ -z "$BPY" ]; then
  "$VENV/bin/python" -m pip install --quiet -e ".[test]" \
    -e plugins/scene -e plugins/polyhaven -e plugins/sketchfab -e plugins/rodin \
    -e plugins/hunyuan3d -e plugins/polypizza
else
  "$VENV/bin/python" -m pip install --quiet -e . -e plugins/scene "bpy==$BPY" pytest pytest-timeout hypothesis
fi
touch "$stamp"
