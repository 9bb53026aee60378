#!/usr/bin/env bash
# Outside tools the render tests need: promtool (Debian `prometheus`) and checkov (its own venv,
# because checkov pins versions that conflict with the project's). Idempotent: fast when done.
set -euo pipefail
cd "$(dirname "$0")/../.."

if ! command -v promtool >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y --no-install-recommends prometheus >/dev/null 2>&1 \
    || { apt-get update >/dev/null && apt-get install -y --no-install-recommends prometheus >/dev/null; }
  # The package's service must not run here; it was never started in a container, stop it anyway.
  service prometheus stop >/dev/null 2>&1 || true
fi

if [ ! -x .tools/checkov/bin/checkov ]; then
  python3 -m venv .tools/checkov
  .tools/checkov/bin/pip install -q -U pip >/dev/null
  # Pinned: a new checkov release may add checks; bump deliberately and re-run the tests.
  .tools/checkov/bin/pip install -q 'checkov==3.3.30' >/dev/null
fi
