#!/usr/bin/env bash
# Checks that the dependency floors in pyproject.toml are true: installs the lowest version
# of every direct dependency that the floors allow (uv's --resolution lowest-direct) into its
# own venv and runs the unit tests there, and the pull's integration tests (the S3 path is
# where a too-low botocore floor once crashed every pull). A floor below what the code uses
# fails here, not on a user's machine where another tool holds a package back. Run after
# scripts/test.sh, which installs the outside servers those tests start.
#   scripts/check-floors.sh [pytest args...]
set -euo pipefail
cd "$(dirname "$0")/.."

UV_VENV=.tools/uv
if [ ! -x "$UV_VENV/bin/uv" ]; then
  python3 -m venv "$UV_VENV"
  "$UV_VENV/bin/pip" install -q uv
fi
LOWEST=.tools/lowest-deps
rm -rf "$LOWEST"
"$UV_VENV/bin/uv" venv -q -p "$(command -v python3)" "$LOWEST"
VIRTUAL_ENV="$PWD/$LOWEST" "$UV_VENV/bin/uv" pip install -q --resolution lowest-direct -e '.[test]'
# The spec reference and the Helm chart's CRD are generated from pydantic's view of the spec
# (its repr of types, its JSON Schema), which differs between pydantic releases: they are
# checked against the current versions by the main suite.
export PATH="$PWD/$LOWEST/bin:$PWD/.tools/bin:$PATH"
exec "$LOWEST/bin/python" -m pytest tests/unit tests/integration/pull -q -p no:cacheprovider \
  --deselect tests/unit/spec/test_spec_docs_current.py \
  --deselect tests/unit/operator/test_operator_chart.py::test_generated_chart_files_are_current \
  --deselect tests/integration/pull/test_pull_s3_checksums.py::test_every_valid_object_pulls_and_the_manifest_says_what_was_checked \
  "$@"
