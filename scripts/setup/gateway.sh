#!/usr/bin/env bash
# Tools the gateway's benchmark compares against: the Rust vllm-router (PyPI), in its own
# venv so its dependencies never touch the project's. Idempotent: a no-op when present.
set -euo pipefail
cd "$(dirname "$0")/../.."
VENV=.tools/vllm-router
if [ -x "$VENV/bin/vllm-router" ]; then
  exit 0
fi
python3 -m venv "$VENV"
"$VENV/bin/pip" install -q -U pip >/dev/null
"$VENV/bin/pip" install -q vllm-router
"$VENV/bin/vllm-router" --help >/dev/null
echo "installed $VENV/bin/vllm-router"
