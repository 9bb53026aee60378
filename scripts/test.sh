#!/usr/bin/env bash
# Sets up everything the test suite needs on a fresh machine, then runs it.
# Idempotent and cached: a second run only re-runs pytest.
#   scripts/test.sh [pytest args...]
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/pip install -q -U pip >/dev/null
.venv/bin/pip install -q -e '.[test]'

# Each component that needs outside tools (promtool, a registry, the control plane...)
# installs them with a script of its own under scripts/setup/.
for setup in scripts/setup/*.sh; do
  [ -e "$setup" ] || continue
  echo "== setup: $setup"
  bash "$setup"
done

export PATH="$PWD/.venv/bin:$PWD/.tools/bin:$PATH"
exec .venv/bin/python -m pytest "$@"
