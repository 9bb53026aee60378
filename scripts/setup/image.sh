#!/usr/bin/env bash
# Installs what kubellm's image build and its tests need, then builds the images (or
# finds them unchanged: the build is stamped by content, so a second run takes seconds):
# mmdebstrap and umoci build, skopeo pushes, docker-registry is the loopback registry the
# push tests use, cmake and build-essential compile llama.cpp for the llama.cpp image.
set -euo pipefail
cd "$(dirname "$0")/../.."

missing=()
for pair in mmdebstrap:mmdebstrap umoci:umoci skopeo:skopeo docker-registry:docker-registry cmake:cmake g++:build-essential; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair##*:}")
done
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update -q >/dev/null
  apt-get -o DPkg::Lock::Timeout=600 install -y -q "${missing[@]}" >/dev/null
fi
# A dependency added to pyproject.toml without a new lock would stop every test run here:
# re-lock (the build itself stays strict), and say that the new lock is to be committed.
PY=.venv/bin/python; [ -x "$PY" ] || PY=python3
for lock in requirements.txt requirements-llamacpp.txt; do
  if ! "$PY" scripts/image/pins.py --check pyproject.toml "scripts/image/$lock" 2>/dev/null; then
    echo "== image: pyproject.toml's dependencies changed; re-locking (commit scripts/image/requirements*.txt)"
    PYTHON="$PY" scripts/image/lock.sh
    break
  fi
done
scripts/image/build.sh all
