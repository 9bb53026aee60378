#!/usr/bin/env bash
# Builds the test control plane from upstream Go modules into .tools/bin/:
#   kube-apiserver, kube-controller-manager, kube-scheduler  (k8s.io/kubernetes)
#   kubelet, kube-proxy (the real node, docs/realnode.md)     (k8s.io/kubernetes)
#   etcd                                                     (go.etcd.io/etcd/server/v3)
#   kwok                                                     (sigs.k8s.io/kwok)
# Idempotent: a binary whose stamp file names the pinned version is skipped.
# Go's caches (~/.cache/go-build, ~/go/pkg/mod) make a rebuild after a version
# bump incremental. Runs niced: the machine is shared.
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

export CGO_ENABLED=0
export GOFLAGS="${GOFLAGS:--buildvcs=false} -mod=mod"

stamp_ok() {  # stamp_ok NAME VERSION
  [ -x "$bin/$1" ] && [ "$(cat "$bin/.$1.version" 2>/dev/null)" = "$2" ]
}

build() {  # build MODULE_DIR VERSION LDFLAGS NAME=PACKAGE...
  local dir="$1" version="$2" ldflags="$3"; shift 3
  local todo=() spec
  for spec in "$@"; do
    stamp_ok "${spec%%=*}" "$version" || todo+=("$spec")
  done
  [ ${#todo[@]} -eq 0 ] && { echo "controlplane: ${dir##*/} $version up to date"; return 0; }
  if [ "${CHECK_ONLY:-0}" = 1 ]; then
    echo "controlplane: missing ${todo[*]%%=*} ($version)"; return 1
  fi
  local start=$SECONDS pkgs=()
  for spec in "${todo[@]}"; do pkgs+=("${spec#*=}"); done
  echo "controlplane: building ${todo[*]%%=*} $version ..."
  (cd "$dir" && nice -n 10 go build -trimpath -ldflags "-s -w $ldflags" -o "$bin/" "${pkgs[@]}")
  for spec in "${todo[@]}"; do echo "$version" > "$bin/.${spec%%=*}.version"; done
  echo "controlplane: built ${todo[*]%%=*} in $((SECONDS - start))s"
}

[ "${1:-}" = "--check" ] && CHECK_ONLY=1
status=0
minor="${K8S_VERSION#v1.}"; minor="${minor%%.*}"
vpkg=k8s.io/component-base/version
k8s_ldflags="-X $vpkg.gitVersion=$K8S_VERSION -X $vpkg.gitMajor=1 -X $vpkg.gitMinor=$minor -X $vpkg.gitTreeState=clean"
build "$here/k8s" "$K8S_VERSION" "$k8s_ldflags" \
  kube-apiserver=k8s.io/kubernetes/cmd/kube-apiserver \
  kube-controller-manager=k8s.io/kubernetes/cmd/kube-controller-manager \
  kube-scheduler=k8s.io/kubernetes/cmd/kube-scheduler || status=1
# The real node's binaries (docs/realnode.md): the same module and stamp, a separate go build
# so that a machine with the control plane already built adds only these (~1 min warm).
build "$here/k8s" "$K8S_VERSION" "$k8s_ldflags" \
  kubelet=k8s.io/kubernetes/cmd/kubelet \
  kube-proxy=k8s.io/kubernetes/cmd/kube-proxy || status=1
build "$here/etcd" "$ETCD_VERSION" "" etcd=go.etcd.io/etcd/server/v3 || status=1
# go build names the etcd server binary after its package path's last element.
for n in v3 server; do [ -x "$bin/$n" ] && mv "$bin/$n" "$bin/etcd"; done; true
build "$here/kwok" "$KWOK_VERSION" "-X sigs.k8s.io/kwok/pkg/consts.Version=$KWOK_VERSION" \
  kwok=sigs.k8s.io/kwok/cmd/kwok || status=1
exit $status
