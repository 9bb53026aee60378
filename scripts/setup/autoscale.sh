#!/usr/bin/env bash
# What the real-node autoscaling tests need (tests/integration/realnode/test_realnode_autoscale.py,
# docs/autoscale.md):
#   - Prometheus from Debian's package, pinned (the server is run by the test, not as a service);
#   - the Prometheus Adapter (custom.metrics.k8s.io) built from its Go module, pinned by the
#     wrapper module scripts/autoscale/adapter/go.mod, into .tools/bin/prometheus-adapter;
#   - KEDA's operator and metrics server, pinned by scripts/autoscale/keda/go.mod, into
#     .tools/bin/keda-operator and keda-adapter, and its CRDs into .tools/keda/crds/.
# Idempotent: quick when the pinned versions are there (scripts/lib/gobuild.sh's stamps).
set -euo pipefail
cd "$(dirname "$0")/../.."

PROMETHEUS_VERSION=2.42.0+ds-5+deb12u1   # Debian bookworm's
if [ "$(dpkg-query -W -f='${Version}' prometheus 2>/dev/null)" != "$PROMETHEUS_VERSION" ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends "prometheus=$PROMETHEUS_VERSION" >/dev/null 2>&1 \
    || { apt-get update >/dev/null && apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends "prometheus=$PROMETHEUS_VERSION" >/dev/null; }
  service prometheus stop >/dev/null 2>&1 || true   # the tests start their own, on the node's veth
fi

GOBUILD_BIN="$PWD/.tools/bin" GOBUILD_LABEL=autoscale
. scripts/lib/gobuild.sh

pinned() {  # pinned DIR MODULE: the version DIR/go.mod requires
  awk -v m="$2" '$1 == m {print $2} $1 == "require" && $2 == m {print $3}' "$1/go.mod" | head -1
}

dir=scripts/autoscale/adapter
go_build "$dir" "$(pinned "$dir" sigs.k8s.io/prometheus-adapter)" "" \
  prometheus-adapter=sigs.k8s.io/prometheus-adapter/cmd/adapter

# Two go builds: each binary's name differs from its package's (cmd/operator, cmd/adapter).
dir=scripts/autoscale/keda
version="$(pinned "$dir" github.com/kedacore/keda/v2)"
go_build "$dir" "$version" "" keda-operator=github.com/kedacore/keda/v2/cmd/operator
go_build "$dir" "$version" "" keda-adapter=github.com/kedacore/keda/v2/cmd/adapter
if [ "$(cat .tools/keda/crds/.version 2>/dev/null)" != "$version" ]; then
  module="$(cd "$dir" && go list -m -f '{{.Dir}}' github.com/kedacore/keda/v2)"
  rm -rf .tools/keda/crds && mkdir -p .tools/keda/crds && cp "$module"/config/crd/bases/*.yaml .tools/keda/crds/
  echo "$version" > .tools/keda/crds/.version
  echo "autoscale: copied keda $version's CRDs"
fi
