#!/usr/bin/env bash
# Tools the gateway's benchmark compares against, each in its own venv so their dependencies
# never touch the project's. Idempotent: a no-op for what is present.
#  - the Rust vllm-router (PyPI `vllm-router`) in .tools/vllm-router;
#  - the vLLM production stack's Python router (`vllm_router.app`, policies prefixaware and
#    session) in .tools/production-stack. PyPI has no release of it (the name `vllm-router` is
#    the Rust router's), so it installs from a source checkout of vllm-project/production-stack
#    named by PRODUCTION_STACK_SRC (a work tree, or a git directory whose HEAD is used); without
#    one it is skipped with a message and the benchmark leaves its rows out. It asks for
#    Python >= 3.12; it runs on this machine's 3.11 (installed with --ignore-requires-python).
set -euo pipefail
cd "$(dirname "$0")/../.."

VENV=.tools/vllm-router
if [ ! -x "$VENV/bin/vllm-router" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q -U pip >/dev/null
  "$VENV/bin/pip" install -q vllm-router
  "$VENV/bin/vllm-router" --help >/dev/null
  echo "installed $VENV/bin/vllm-router"
fi

PS_VENV=.tools/production-stack
if [ -x "$PS_VENV/bin/python" ] && "$PS_VENV/bin/python" -c "import vllm_router.app" 2>/dev/null; then
  exit 0
fi
SRC=${PRODUCTION_STACK_SRC:-}
if [ -z "$SRC" ]; then
  echo "production stack router skipped: set PRODUCTION_STACK_SRC to a checkout of vllm-project/production-stack"
  exit 0
fi
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
if [ -f "$SRC/pyproject.toml" ]; then
  cp -r "$SRC/." "$TMP/src"
  VERSION=$(git -C "$SRC" describe --tags --always 2>/dev/null || echo 0.0.0)
else  # a git directory without a work tree
  mkdir "$TMP/src"
  git --git-dir="$SRC" archive HEAD | tar -x -C "$TMP/src"
  VERSION=$(git --git-dir="$SRC" describe --tags --always 2>/dev/null || echo 0.0.0)
fi
python3 -m venv "$PS_VENV"
"$PS_VENV/bin/pip" install -q -U pip >/dev/null
# setuptools_scm cannot read a version from an exported tree: give it one
SETUPTOOLS_SCM_PRETEND_VERSION="0.0.0+${VERSION//[^A-Za-z0-9.]/.}" \
  "$PS_VENV/bin/pip" install -q --ignore-requires-python "$TMP/src"
"$PS_VENV/bin/python" -m vllm_router.app --help >/dev/null
echo "installed the production stack router into $PS_VENV ($VERSION)"
