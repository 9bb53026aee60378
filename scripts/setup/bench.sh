#!/usr/bin/env bash
# Installs the outside tool bench's comparison test uses: guidellm, in its own venv
# (.tools/guidellm) because its pinned dependencies may clash with kubellm's.
# Idempotent: a second run only checks that the binary is there.
set -euo pipefail
cd "$(dirname "$0")/../.."

GUIDELLM_VENV=.tools/guidellm
if [ -x "$GUIDELLM_VENV/bin/guidellm" ]; then
  exit 0
fi
mkdir -p .tools
python3 -m venv "$GUIDELLM_VENV"
"$GUIDELLM_VENV/bin/pip" install -q -U pip >/dev/null
# Pinned: bench/bench_vs_guidellm.py uses the flags of this release (--backend kind=..., --constraint).
"$GUIDELLM_VENV/bin/pip" install -q guidellm==0.8.1
