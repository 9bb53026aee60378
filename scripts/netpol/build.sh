#!/usr/bin/env bash
# Builds the real node's network-policy engine (docs/realnode.md, "NetworkPolicies enforced")
# into .tools/bin/kube-router: kube-router's network-policy controller from its upstream Go
# module github.com/cloudnativelabs/kube-router/v2, pinned in scripts/netpol/kube-router/go.mod.
# The harness runs it with --run-firewall only (no BGP router, no service proxy).
# Idempotent: skipped when the stamp file names the pinned version (scripts/lib/gobuild.sh).
#   scripts/netpol/build.sh            build it if missing
#   scripts/netpol/build.sh --check    exit 1 if it is missing (no build)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"

# The newest version the Go module proxy serves (@latest is v2.1.0; v2.4.1 and v2.5.0 were
# refused). Its reported advisory (GHSA-phqm-jgc3-qf8g) is in the service proxy, which the
# harness does not run.
KUBE_ROUTER_VERSION=v2.1.0

GOBUILD_BIN="$root/.tools/bin" GOBUILD_LABEL=netpol
. "$root/scripts/lib/gobuild.sh"
[ "${1:-}" = "--check" ] && GOBUILD_CHECK=1

pkg=github.com/cloudnativelabs/kube-router/v2/pkg/version
go_build "$here/kube-router" "$KUBE_ROUTER_VERSION" "-X $pkg.Version=$KUBE_ROUTER_VERSION -X $pkg.BuildDate=pinned" \
  kube-router=github.com/cloudnativelabs/kube-router/v2/cmd/kube-router
