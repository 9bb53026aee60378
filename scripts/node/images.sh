#!/usr/bin/env bash
# Builds the two small images of the test cluster's real node, as OCI archives for
# `ctr -n k8s.io images import` (no registry can be reached here, so neither can be pulled):
#   .tools/node/pause.oci.tar    registry.k8s.io/pause:3.10   the pod sandbox, from pause.c
#   .tools/node/testbox.oci.tar  kubellm.test/testbox:1       busybox-static, for the harness's
#                                                             own tests (httpd, wget, sh)
# The reference of each is in .tools/node/NAME.ref. Cached by content: an image is rebuilt only
# when its inputs or this script change.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="$(cd "$here/../.." && pwd)/.tools/node"

need() {  # need FILE_OR_COMMAND DEBIAN_PACKAGE
  command -v "$1" >/dev/null 2>&1 || [ -e "$1" ] \
    || { echo "node images: $1 not found: apt-get install $2" >&2; exit 1; }
}

pack() {  # pack NAME REF ROOTFS_DIR ENTRYPOINT USER INPUT...: the OCI archive of ROOTFS_DIR
  local name="$1" ref="$2" rootfs="$3" entrypoint="$4" user="$5"; shift 5
  local stamp work tag="${ref##*:}"
  stamp="$(cat "$@" "$0" | sha256sum | cut -c1-16)"
  if [ -f "$out/$name.oci.tar" ] && [ "$(cat "$out/.$name.stamp" 2>/dev/null)" = "$stamp" ]; then
    return 0
  fi
  work="$(mktemp -d)"
  tar --owner=0 --group=0 --numeric-owner --mtime=@0 -C "$rootfs" -cf "$work/layer.tar" .
  umoci init --layout "$work/oci"
  umoci new --image "$work/oci:$tag"
  umoci raw add-layer --image "$work/oci:$tag" "$work/layer.tar"
  umoci config --image "$work/oci:$tag" --config.entrypoint "$entrypoint" --config.user "$user"
  umoci gc --layout "$work/oci"  # drop the manifests that each config step superseded
  # Written beside, then renamed: a half-written archive is never read as complete.
  tar -C "$work/oci" -cf "$out/$name.oci.tar.part" .
  mv "$out/$name.oci.tar.part" "$out/$name.oci.tar"
  echo "$ref" > "$out/$name.ref"
  echo "$stamp" > "$out/.$name.stamp"
  rm -rf "$work"
  echo "node images: built $out/$name.oci.tar ($ref)"
}

need gcc gcc
need umoci umoci
need "$(gcc -print-file-name=libc.a)" libc6-dev
need /bin/busybox busybox-static
mkdir -p "$out"
build="$(mktemp -d)"
trap 'rm -rf "$build"' EXIT

mkdir -p "$build/pause"
gcc -static -Os -s -o "$build/pause/pause" "$here/pause.c"
pack pause registry.k8s.io/pause:3.10 "$build/pause" /pause 65535:65535 "$here/pause.c"

mkdir -p "$build/testbox/bin" "$build/testbox/tmp" "$build/testbox/www"
cp /bin/busybox "$build/testbox/bin/busybox"
for applet in sh httpd wget cat echo sleep ls nc; do ln -s busybox "$build/testbox/bin/$applet"; done
echo ok > "$build/testbox/www/index.html"
pack testbox kubellm.test/testbox:1 "$build/testbox" /bin/sh 65532:65532 /bin/busybox
