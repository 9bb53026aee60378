#!/usr/bin/env bash
# The README's first command: sets up kubellm in .venv on a fresh machine (idempotent:
# a second run reinstalls only if pyproject.toml changed), then runs local mode on the embedded default,
# examples/quickstart.yaml (the simulator engine: no GPU, no download).
#   scripts/up.sh [kubellm up flags...]      e.g. scripts/up.sh --port 8080
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
# Reinstall only when pyproject.toml changed since the last install (its hash is stamped).
stamp=.venv/.kubellm-installed
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ] || ! .venv/bin/python -c 'import kubellm' 2>/dev/null; then
  .venv/bin/pip install -q -U pip >/dev/null
  .venv/bin/pip install -q -e .
  echo "$want" > "$stamp"
fi
exec .venv/bin/kubellm up examples/quickstart.yaml "$@"
