#!/usr/bin/env bash
# Regenerates the images' pinned requirements from pyproject.toml (run it after changing
# kubellm's dependencies; scripts/image/build.sh installs exactly these pins):
#   requirements.txt           kubellm's runtime dependencies, each with its wheel's sha256
#   requirements-llamacpp.txt  the same resolved together with llama-cpp-python[server];
#                              versions only: llama-cpp-python is built from its sdist on
#                              the build machine, so no published hash matches its wheel.
# Resolves for CPython 3.11 on x86_64 Linux, the interpreter of Debian bookworm's python3
# in the image; run it with a Python 3.11 on such a machine.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
PY="${PYTHON:-python3}"
LLAMA_CPP="llama-cpp-python[server]==${LLAMA_CPP_VERSION:-0.3.36}"

if ! "$PY" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
  echo "lock.sh: needs Python 3.11 (the image's interpreter) to resolve; set PYTHON=" >&2
  exit 1
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
resolve() {  # resolve OUT REQUIREMENT...: pip's report of what it would install
  local out="$1"; shift
  "$PY" -m pip install -q --dry-run --ignore-installed --report "$out" "$@"
}
resolve "$work/kubellm.json" "$ROOT"
resolve "$work/llamacpp.json" "$ROOT" "$LLAMA_CPP"
"$PY" "$ROOT/scripts/image/pins.py" "$work/kubellm.json" --skip kubellm > "$ROOT/scripts/image/requirements.txt.tmp"
"$PY" "$ROOT/scripts/image/pins.py" "$work/llamacpp.json" --skip kubellm --no-hashes > "$ROOT/scripts/image/requirements-llamacpp.txt.tmp"
mv "$ROOT/scripts/image/requirements.txt.tmp" "$ROOT/scripts/image/requirements.txt"
mv "$ROOT/scripts/image/requirements-llamacpp.txt.tmp" "$ROOT/scripts/image/requirements-llamacpp.txt"
