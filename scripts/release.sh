#!/usr/bin/env bash
# Build everything a release ships into dist/ (or $OUT): an sdist and a wheel of blendbus and of each
# bundled plugin, checked with twine, and the Blender add-on for every platform Blender runs on.
#   bash scripts/release.sh                 then: pip install --find-links dist "blendbus[all]"
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-dist}"
bash scripts/bootstrap.sh test >&2  # the build and twine packages come with the test tools
rm -rf "$OUT"
mkdir -p "$OUT"
for project in . plugins/scene plugins/polyhaven plugins/sketchfab plugins/rodin plugins/hunyuan3d plugins/polypizza; do
  .venv/bin/python -m build --no-isolation --sdist --wheel --outdir "$OUT" "$project" >&2
  rm -rf "$project/build"  # setuptools' working folder, not part of the release
done
.venv/bin/python -m twine check --strict "$OUT"/*.whl "$OUT"/*.tar.gz >&2
.venv/bin/blendbus addon build --platform all --out "$OUT" >&2
ls -l "$OUT"
