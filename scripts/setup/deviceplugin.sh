#!/usr/bin/env bash
# The NVIDIA device plugin's own config parser, for the render tests of spec.cost.gpuSharing:
# tests/integration/render/deviceplugin (a small Go command over
# github.com/NVIDIA/k8s-device-plugin/api/config/v1, pinned in its go.mod) built into
# .tools/bin/deviceplugin-check. Needs Go and the Go module proxy; idempotent: fast when built.
set -euo pipefail
cd "$(dirname "$0")/../.."

src=tests/integration/render/deviceplugin
out=.tools/bin/deviceplugin-check
if [ -x "$out" ] && [ "$out" -nt "$src/main.go" ] && [ "$out" -nt "$src/go.mod" ]; then
  exit 0
fi
mkdir -p .tools/bin
(cd "$src" && CGO_ENABLED=0 go build -mod=mod -o "$OLDPWD/$out" .)
