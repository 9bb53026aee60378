#!/usr/bin/env bash
# Outside tools the pull tests need: the distribution registry (Debian `docker-registry`) and
# Azurite (npm). With --bench also what bench/pull_s3.py needs: awscli in its own venv and
# MinIO built from its Go module (CPU-heavy: minutes). Idempotent: fast when already done.
set -euo pipefail
cd "$(dirname "$0")/../.."

if ! command -v docker-registry >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y --no-install-recommends docker-registry >/dev/null 2>&1 \
    || { apt-get update >/dev/null && apt-get install -y --no-install-recommends docker-registry >/dev/null; }
  service docker-registry stop >/dev/null 2>&1 || true  # the tests start their own, on loopback
fi

if [ ! -x .tools/azurite/node_modules/.bin/azurite-blob ] && command -v npm >/dev/null 2>&1; then
  mkdir -p .tools/azurite
  (cd .tools/azurite && timeout 300 npm install --no-audit --no-fund --silent azurite >/dev/null) \
    || echo "pull setup: azurite did not install; the az:// integration tests will be skipped" >&2
fi

if [ "${1:-}" = "--bench" ]; then
  if [ ! -x .tools/awscli/bin/aws ]; then
    python3 -m venv .tools/awscli
    .tools/awscli/bin/pip install -q awscli >/dev/null
  fi
  if [ ! -x .tools/bin/minio ]; then
    mkdir -p .tools/bin
    GOBIN="$PWD/.tools/bin" GOFLAGS=-mod=mod nice -n 15 go install github.com/minio/minio@latest
  fi
fi
