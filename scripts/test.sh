#!/usr/bin/env bash
# Set up, then run every test: core, addon and plugins with real Blender (bpy 5.0.1), then the
# scene plugin again on Blender 4.2 LTS and 4.5 LTS. Arguments are pytest's and go to the first run
# only, which then skips the other Blender versions: `bash scripts/test.sh -k status tests/test_cli.py`.
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
  "$1/bin/python" -m pytest "${@:2}"
  local status=$?
  if [ "$status" -eq 5 ]; then
    echo "pytest collected no tests: that is a failure here" >&2
    return 1
  fi
  return "$status"
}

bash scripts/test-prereqs.sh || exit 1
bash scripts/bootstrap.sh test || exit 1
run_pytest .venv "$@" || exit 1
[ "$#" -eq 0 ] || exit 0

for version in 4.2.0 4.5.15; do
  echo "== scene plugin on Blender $version =="
  VENV=".venvs/bpy-$version" BPY="$version" bash scripts/bootstrap.sh test || exit 1
  run_pytest ".venvs/bpy-$version" -q plugins/scene || exit 1
done
