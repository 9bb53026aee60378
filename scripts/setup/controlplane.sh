#!/usr/bin/env bash
# Builds the operator's test control plane (kube-apiserver, kube-controller-manager,
# kube-scheduler, etcd, kwok) and the real node's kubelet and kube-proxy from upstream Go
# modules into .tools/bin/.
# Idempotent: nothing is rebuilt when the stamped versions are there. The first build
# takes a long time on two cores (see docs/controlplane.md); Go's caches
# (~/.cache/go-build, ~/go/pkg/mod) make later builds on the same machine fast.
set -euo pipefail
cd "$(dirname "$0")/../.."
# Go is needed only for what is not built yet: scripts/lib/gobuild.sh says so then.
exec bash scripts/controlplane/build.sh
