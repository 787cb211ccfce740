#!/usr/bin/env bash
# Set up, then serve MCP on http://127.0.0.1:8765/mcp with an embedded headless Blender peer.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f .venv/.blendbus-installed ] || echo "first run: setting up .venv with blendbus, its plugins and Blender (bpy) — about a minute" >&2
bash scripts/bootstrap.sh
exec .venv/bin/blendbus serve --embedded-blender "$@"
