#!/usr/bin/env bash
# Installs what local mode's tests need beyond the package's own dependencies:
# llama.cpp's OpenAI-compatible server through llama-cpp-python[server], built from
# source into the main .venv. GGML_NATIVE=OFF keeps the build portable across CPUs
# (CI machines differ from this one); pip caches the built wheel, so a second install
# on the same machine takes seconds rather than the ~6 minutes of a first build.
# Idempotent: when the server module already imports, this exits at once.
set -euo pipefail
cd "$(dirname "$0")/../.."

PY=.venv/bin/python
if "$PY" -c 'import llama_cpp.server.app, uvicorn, sse_starlette' >/dev/null 2>&1; then
  exit 0
fi
for tool in cmake gcc g++; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    apt-get update -q >/dev/null && apt-get install -y -q cmake build-essential >/dev/null
    break
  fi
done
CMAKE_ARGS="-DGGML_NATIVE=OFF" nice -n 10 .venv/bin/pip install -q 'llama-cpp-python[server]'
