# Functions of scripts/image/build.sh (sourced). Each step works in a directory of its
# own and never leaves a partial output at a final path: archives are written under a
# temporary name and renamed, and the stamp is written last.

die() { echo "image build: $*" >&2; exit 1; }

# need_tool COMMAND DEBIAN_PACKAGE: stop with the package to install when a tool is missing.
need_tool() {
  command -v "$1" >/dev/null 2>&1 || die "'$1' not found: install the Debian package '$2' (apt-get install -y $2), or run scripts/setup/image.sh"
}

version() { sed -n 's/^__version__ = "\(.*\)"$/\1/p' "$ROOT/src/kubellm/__init__.py"; }

revision() { git -C "$ROOT" rev-parse HEAD 2>/dev/null || echo unknown; }

# content_hash FILE...: one sha256 over the names and contents of the inputs (directories
# walked in a stable order, bytecode caches skipped).
content_hash() {
  (cd "$ROOT" && find "$@" -type f ! -path '*/__pycache__/*' ! -name '*.pyc' -print0 | LC_ALL=C sort -z \
    | xargs -0 sha256sum) | sha256sum | cut -c1-64
}

# base_rootfs NAME PACKAGES OUT_TAR: a Debian minbase root filesystem without apt, docs or
# locales, cached by its package list (a change of sources gives a new base).
base_rootfs() {
  local name="$1" packages="$2" out="$3"
  local key; key="$(printf '%s\n' "$packages" "$(declare -f base_rootfs)" | sha256sum | cut -c1-16)"
  local cached="$CACHE/base-$name-$key.tar"
  if [ ! -s "$cached" ]; then
    local dir; dir="$(mktemp -d "$CACHE/base.XXXXXX")"
    echo "== $name: Debian base ($packages)"
    nice -n 10 mmdebstrap --quiet --variant=minbase --include="$packages" \
      --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
      --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/info/*' \
      --dpkgopt='path-exclude=/usr/share/locale/*' \
      bookworm "$dir/rootfs" || die "mmdebstrap failed (it fetches from the Debian mirror in /etc/apt/sources.list*)"
    # apt is only needed to install; the image never installs anything.
    chroot "$dir/rootfs" dpkg --purge apt >/dev/null
    rm -rf "$dir/rootfs/var/cache/apt" "$dir/rootfs/var/lib/apt" "$dir/rootfs/var/log/"* "$dir/rootfs/etc/apt"
    tar --numeric-owner -C "$dir/rootfs" -cf "$dir/base.tar" .
    mv "$dir/base.tar" "$cached"
    rm -rf "$dir"
  fi
  cp "$cached" "$out"
}

# fetch_wheels REQUIREMENTS DIR [pip args...]: the pinned wheels for CPython 3.11 on
# x86_64 glibc Linux, whatever Python runs pip here (the image's is bookworm's 3.11).
fetch_wheels() {
  local requirements="$1" dir="$2"; shift 2
  local platforms=() v
  for v in $(seq 5 36); do platforms+=(--platform "manylinux_2_${v}_x86_64"); done
  platforms+=(--platform manylinux2014_x86_64 --platform manylinux1_x86_64 --platform linux_x86_64)
  "$HOST_PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.11 --implementation cp \
    --abi cp311 --abi abi3 --abi none "${platforms[@]}" -d "$dir" -r "$requirements" "$@" \
    || die "downloading the pinned wheels of $requirements failed (needs a package index: pip's usual configuration)"
}

# venv_install ROOTFS WHEELS REQUIREMENTS PIP_WHEEL [pip args...]: installs into the image's
# /opt/kubellm from the given wheels only, running pip from its own wheel under chroot so
# that pip never becomes part of the image.
venv_install() {
  local rootfs="$1" wheels="$2" requirements="$3" pip_wheel="$4"; shift 4
  mkdir -p "$rootfs/tmp/build"
  cp -l "$wheels"/*.whl "$rootfs/tmp/build/" 2>/dev/null || cp "$wheels"/*.whl "$rootfs/tmp/build/"
  cp "$requirements" "$rootfs/tmp/build/requirements.txt"
  cp "$pip_wheel" "$rootfs/tmp/pip.whl"
  chroot "$rootfs" /usr/bin/env -i PATH=/usr/bin:/bin HOME=/tmp /opt/kubellm/bin/python /tmp/pip.whl/pip install \
    -q --no-index --no-cache-dir --no-compile --disable-pip-version-check --find-links /tmp/build \
    -r /tmp/build/requirements.txt "$@" || die "installing into the image failed"
  rm -rf "$rootfs/tmp/build" "$rootfs/tmp/pip.whl"
}

# finish_rootfs ROOTFS: bytecode for every module (the root filesystem is read-only at run
# time, so Python could never cache it later), and what the image must not carry.
finish_rootfs() {
  local rootfs="$1"
  chroot "$rootfs" /opt/kubellm/bin/python -m compileall -q -j 0 --invalidation-mode unchecked-hash /opt/kubellm >/dev/null \
    || die "compiling the image's modules failed"
  rm -f "$rootfs"/opt/kubellm/bin/activate* "$rootfs"/opt/kubellm/bin/Activate.ps1
  rm -rf "$rootfs"/tmp/* "$rootfs"/root/.cache "$rootfs"/var/cache/debconf/*-old
  chmod 1777 "$rootfs/tmp"
}

# pack ROOTFS NAME REF ARCHIVE ENTRYPOINT_JSON: an OCI image layout with one image, packed
# with umoci, written as an oci-archive at ARCHIVE.
pack() {
  local rootfs="$1" name="$2" ref="$3" archive="$4" entrypoint="$5"
  local work; work="$(dirname "$rootfs")"
  local tag="${ref##*:}" layout="$work/oci"
  tar --numeric-owner --sort=name -C "$rootfs" -cf "$work/layer.tar" .
  umoci init --layout "$layout"
  umoci new --image "$layout:$tag"
  umoci raw add-layer --image "$layout:$tag" "$work/layer.tar"
  rm -f "$work/layer.tar"
  local config=(--config.user 65532:65532 --config.workingdir /tmp --clear=config.entrypoint --clear=config.cmd --clear=config.env)
  local arg
  while read -r arg; do config+=(--config.entrypoint "$arg"); done < <("$HOST_PY" -c 'import json,sys; print("\n".join(json.loads(sys.argv[1])))' "$entrypoint")
  for arg in "${IMAGE_ENV[@]}"; do config+=(--config.env "$arg"); done
  config+=(--config.label "org.opencontainers.image.source=$SOURCE_URL"
    --config.label "org.opencontainers.image.version=$VERSION"
    --config.label "org.opencontainers.image.revision=$(revision)"
    --config.label "org.opencontainers.image.title=$name"
    --config.label "org.opencontainers.image.licenses=Apache-2.0"
    --author kubellm --os linux --architecture amd64)
  umoci config --image "$layout:$tag" "${config[@]}"
  umoci gc --layout "$layout"
  # Name the one image in the index the way skopeo (ref.name) and containerd's importer
  # (io.containerd.image.name, fully qualified as the kubelet looks it up) read it.
  "$HOST_PY" - "$layout/index.json" "$ref" <<'PY'
import json, sys
path, ref = sys.argv[1], sys.argv[2]
index = json.load(open(path))
(manifest,) = index["manifests"]
qualified = ref if "/" in ref.split(":")[0] else f"docker.io/library/{ref}"
manifest["annotations"] = {"org.opencontainers.image.ref.name": ref, "io.containerd.image.name": qualified}
json.dump(index, open(path, "w"))
PY
  chmod -R a+rX "$layout"  # umoci writes blobs 0600: let a non-root skopeo or ctr read them
  tar -C "$layout" -cf "$archive.tmp" oci-layout index.json blobs
  mv "$archive.tmp" "$archive"
}
