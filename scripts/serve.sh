#!/usr/bin/env bash
# Set up .venv (Python packages only: no root needed), then serve MCP on http://127.0.0.1:8765/mcp
# with an embedded headless Blender peer. Extra arguments go to `blendbus serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f .venv/.blendbus-installed-serve ] || echo "first run: setting up .venv with blendbus, its plugins and Blender (bpy): a few minutes, about 1 GB" >&2
bash scripts/bootstrap.sh serve
exec .venv/bin/blendbus serve --embedded-blender "$@"
