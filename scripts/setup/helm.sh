#!/usr/bin/env bash
# Builds helm, for the chart's tests (lint, template, install/upgrade/uninstall on the test
# control plane), from its Go module into .tools/bin/helm, the way the control plane is
# built. The version is the one scripts/helm/go.mod pins. Idempotent: skipped when the
# stamped version is there.
set -euo pipefail
cd "$(dirname "$0")/../.."
version="$(awk '$1 == "require" && $2 == "helm.sh/helm/v3" {print $3}' scripts/helm/go.mod)"
bin="$PWD/.tools/bin"
if [ -x "$bin/helm" ] && [ "$(cut -d+ -f1 "$bin/.helm.version" 2>/dev/null)" = "$version" ] \
   && grep -q +k8s "$bin/.helm.version"; then
  echo "helm: $version up to date"; exit 0
fi
if ! command -v go >/dev/null 2>&1; then
  echo "helm: Go toolchain not found; the chart's tests will fail" >&2; exit 1
fi
mkdir -p "$bin"
export CGO_ENABLED=0 GOFLAGS="-buildvcs=false -mod=mod"
start=$SECONDS
# As helm's Makefile does: the Kubernetes version `helm template` and `helm lint` assume is
# the one of the client-go helm was built with (the default, 1.20, fails kubeVersion checks).
client_go="$(cd scripts/helm && go list -f '{{.Version}}' -m k8s.io/client-go)"   # v0.MINOR.PATCH
minor="$(echo "$client_go" | cut -d. -f2)"
ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=$version"
for pkg in helm.sh/helm/v3/pkg/lint/rules helm.sh/helm/v3/pkg/chartutil; do
  ldflags="$ldflags -X $pkg.k8sVersionMajor=1 -X $pkg.k8sVersionMinor=$minor"
done
(cd scripts/helm && nice -n 10 go build -trimpath -ldflags "$ldflags" -o "$bin/helm" helm.sh/helm/v3/cmd/helm)
echo "$version+k8s1.$minor" > "$bin/.helm.version"
echo "helm: built $version in $((SECONDS - start))s"
