#!/usr/bin/env bash
# What the real-node autoscaling tests need (tests/integration/realnode/test_realnode_autoscale.py,
# docs/autoscale.md):
#   - Prometheus from Debian's package, pinned (the server is run by the test, not as a service);
#   - the Prometheus Adapter (custom.metrics.k8s.io) built from its Go module, pinned by the
#     wrapper module scripts/autoscale/adapter/go.mod, into .tools/bin/prometheus-adapter;
#   - KEDA's operator and metrics server, pinned by scripts/autoscale/keda/go.mod, into
#     .tools/bin/keda-operator and keda-adapter, and its CRDs into .tools/keda/crds/.
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

bin="$PWD/.tools/bin"
mkdir -p "$bin"
export CGO_ENABLED=0 GOFLAGS="-buildvcs=false -mod=mod"

pinned() {  # pinned DIR MODULE: the version DIR/go.mod requires
  awk -v m="$2" '$1 == m {print $2} $1 == "require" && $2 == m {print $3}' "$1/go.mod" | head -1
}

stamped() {  # stamped NAME VERSION
  [ -x "$bin/$1" ] && [ "$(cat "$bin/.$1.version" 2>/dev/null)" = "$2" ]
}

need_go() {
  command -v go >/dev/null 2>&1 || { echo "autoscale: Go toolchain not found; the real-node autoscaling tests will fail" >&2; exit 1; }
}

dir=scripts/autoscale/adapter
version="$(pinned "$dir" sigs.k8s.io/prometheus-adapter)"
if stamped prometheus-adapter "$version"; then
  echo "autoscale: prometheus-adapter $version up to date"
else
  need_go; start=$SECONDS
  (cd "$dir" && nice -n 10 go build -trimpath -ldflags "-s -w" -o "$bin/prometheus-adapter" sigs.k8s.io/prometheus-adapter/cmd/adapter)
  echo "$version" > "$bin/.prometheus-adapter.version"
  echo "autoscale: built prometheus-adapter $version in $((SECONDS - start))s"
fi

dir=scripts/autoscale/keda
version="$(pinned "$dir" github.com/kedacore/keda/v2)"
if stamped keda-operator "$version" && stamped keda-adapter "$version" && [ -n "$(ls .tools/keda/crds 2>/dev/null)" ]; then
  echo "autoscale: keda $version up to date"
else
  need_go; start=$SECONDS
  (cd "$dir" && nice -n 10 go build -trimpath -ldflags "-s -w" -o "$bin/keda-operator" github.com/kedacore/keda/v2/cmd/operator \
     && nice -n 10 go build -trimpath -ldflags "-s -w" -o "$bin/keda-adapter" github.com/kedacore/keda/v2/cmd/adapter)
  module="$(cd "$dir" && go list -m -f '{{.Dir}}' github.com/kedacore/keda/v2)"
  rm -rf .tools/keda/crds && mkdir -p .tools/keda/crds && cp "$module"/config/crd/bases/*.yaml .tools/keda/crds/
  echo "$version" > "$bin/.keda-operator.version"; echo "$version" > "$bin/.keda-adapter.version"
  echo "autoscale: built keda $version in $((SECONDS - start))s"
fi
