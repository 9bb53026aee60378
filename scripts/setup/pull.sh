#!/usr/bin/env bash
# Outside tools the pull tests and bench/pull_s3.py need: the distribution registry (Debian
# `docker-registry`), Azurite (npm), the AWS CLI in its own venv (the tests upload with it as
# users do), and MinIO built from its Go module at a pinned version (CPU-heavy: minutes the
# first time; Go's build cache and .tools/bin keep it after that). Idempotent: fast when done.
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

if [ ! -x .tools/awscli/bin/aws ]; then
  python3 -m venv .tools/awscli
  .tools/awscli/bin/pip install -q awscli >/dev/null
fi

MINIO_VERSION=v0.0.0-20260212201848-7aac2a2c5b7c  # the Go module proxy's newest on 2026-12-07
if [ "$(cat .tools/bin/.minio.version 2>/dev/null)" != "$MINIO_VERSION" ]; then
  mkdir -p .tools/bin
  GOBIN="$PWD/.tools/bin" GOFLAGS=-mod=mod CGO_ENABLED=0 nice -n 15 go install "github.com/minio/minio@$MINIO_VERSION"
  echo "$MINIO_VERSION" > .tools/bin/.minio.version
fi
