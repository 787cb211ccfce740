#!/usr/bin/env bash
# Set up, then run every test: core, addon and plugins with real Blender (bpy 5.0.1), and the scene
# plugin on Blender 4.2 LTS and 4.5 LTS too (tests/test_blender_versions.py). Arguments are pytest's:
# `bash scripts/test.sh -k status tests/test_cli.py`; `-m "not slow"` leaves out the soaks, the whole
# benchmark run and the older Blenders.
# `--repeat N` first runs it all N times and says how many runs passed: a test that fails once is a defect.
set -uo pipefail
cd "$(dirname "$0")/.."

if [ "${1:-}" = "--repeat" ]; then
  times="${2:?--repeat needs a count}"
  shift 2
  failed=0
  for run in $(seq 1 "$times"); do
    echo "== run $run of $times =="
    bash scripts/test.sh "$@" || { failed=$((failed + 1)); echo "== run $run of $times FAILED =="; }
  done
  echo "== $((times - failed)) of $times runs passed =="
  exit $((failed > 0))
fi

run_pytest() {
  .venv/bin/python -m pytest "$@"
  local status=$?
  if [ "$status" -eq 5 ]; then
    echo "pytest collected no tests: that is a failure here" >&2
    return 1
  fi
  return "$status"
}

bash scripts/test-prereqs.sh || exit 1
bash scripts/bootstrap.sh test || exit 1
run_pytest "$@"
