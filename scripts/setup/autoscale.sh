#!/usr/bin/env bash
# What the real-node autoscaling tests need (tests/integration/realnode/test_realnode_autoscale.py,
# docs/autoscale.md):
#   - Prometheus from Debian's package, pinned (the server is run by the test, not as a service);
#   - the Prometheus Adapter (custom.metrics.k8s.io) built from its Go module, pinned by the
#     wrapper module scripts/autoscale/adapter/go.mod, into .tools/bin/prometheus-adapter.
# Idempotent: quick when the pinned versions are there. Go's caches (~/.cache/go-build,
# ~/go/pkg/mod) make a rebuild after a version bump incremental. Runs niced: the machine is shared.
set -euo pipefail
cd "$(dirname "$0")/../.."

PROMETHEUS_VERSION=2.42.0+ds-5+deb12u1   # Debian bookworm's
if [ "$(dpkg-query -W -f='${Version}' prometheus 2>/dev/null)" != "$PROMETHEUS_VERSION" ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends "prometheus=$PROMETHEUS_VERSION" >/dev/null 2>&1 \
    || { apt-get update >/dev/null && apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends "prometheus=$PROMETHEUS_VERSION" >/dev/null; }
  service prometheus stop >/dev/null 2>&1 || true   # the tests start their own, on the node's veth
fi

dir=scripts/autoscale/adapter
version="$(awk '$1 == "require" && $2 == "sigs.k8s.io/prometheus-adapter" {print $3}' "$dir/go.mod")"
bin="$PWD/.tools/bin"
if [ -x "$bin/prometheus-adapter" ] && [ "$(cat "$bin/.prometheus-adapter.version" 2>/dev/null)" = "$version" ]; then
  echo "autoscale: prometheus-adapter $version up to date"; exit 0
fi
if ! command -v go >/dev/null 2>&1; then
  echo "autoscale: Go toolchain not found; the real-node autoscaling tests will fail" >&2; exit 1
fi
mkdir -p "$bin"
export CGO_ENABLED=0 GOFLAGS="-buildvcs=false -mod=mod"
start=$SECONDS
(cd "$dir" && nice -n 10 go build -trimpath -ldflags "-s -w" -o "$bin/prometheus-adapter" sigs.k8s.io/prometheus-adapter/cmd/adapter)
echo "$version" > "$bin/.prometheus-adapter.version"
echo "autoscale: built prometheus-adapter $version in $((SECONDS - start))s"
