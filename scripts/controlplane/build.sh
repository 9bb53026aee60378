#!/usr/bin/env bash
# Builds the test control plane from upstream Go modules into .tools/bin/:
#   kube-apiserver, kube-controller-manager, kube-scheduler  (k8s.io/kubernetes)
#   kubelet, kube-proxy (the real node, docs/realnode.md)     (k8s.io/kubernetes)
#   etcd                                                     (go.etcd.io/etcd/server/v3)
#   kwok                                                     (sigs.k8s.io/kwok)
# Idempotent: a binary whose stamp file names the pinned version is skipped
# (scripts/lib/gobuild.sh, shared with the other Go build scripts).
#   scripts/controlplane/build.sh            build what is missing
#   scripts/controlplane/build.sh --check    exit 1 if anything is missing (no build)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
bin="$root/.tools/bin"
mkdir -p "$bin"

K8S_VERSION=v1.34.4
ETCD_VERSION=v3.6.16
KWOK_VERSION=v0.8.0

GOBUILD_BIN="$bin" GOBUILD_LABEL=controlplane
. "$root/scripts/lib/gobuild.sh"

[ "${1:-}" = "--check" ] && GOBUILD_CHECK=1
status=0
minor="${K8S_VERSION#v1.}"; minor="${minor%%.*}"
vpkg=k8s.io/component-base/version
k8s_ldflags="-X $vpkg.gitVersion=$K8S_VERSION -X $vpkg.gitMajor=1 -X $vpkg.gitMinor=$minor -X $vpkg.gitTreeState=clean"
go_build "$here/k8s" "$K8S_VERSION" "$k8s_ldflags" \
  kube-apiserver=k8s.io/kubernetes/cmd/kube-apiserver \
  kube-controller-manager=k8s.io/kubernetes/cmd/kube-controller-manager \
  kube-scheduler=k8s.io/kubernetes/cmd/kube-scheduler || status=1
# The real node's binaries (docs/realnode.md): the same module and stamp, a separate go build
# so that a machine with the control plane already built adds only these (~1 min warm).
go_build "$here/k8s" "$K8S_VERSION" "$k8s_ldflags" \
  kubelet=k8s.io/kubernetes/cmd/kubelet \
  kube-proxy=k8s.io/kubernetes/cmd/kube-proxy || status=1
go_build "$here/etcd" "$ETCD_VERSION" "" etcd=go.etcd.io/etcd/server/v3 || status=1
go_build "$here/kwok" "$KWOK_VERSION" "-X sigs.k8s.io/kwok/pkg/consts.Version=$KWOK_VERSION" \
  kwok=sigs.k8s.io/kwok/cmd/kwok || status=1
exit $status
