#!/usr/bin/env bash
# Builds kubellm's container images with no Docker engine and no container registry
# (docs/image.md): a Debian root filesystem from packages (mmdebstrap), the pinned
# dependencies installed into a virtual environment in it, packed with umoci as OCI
# archives under .tools/images/, each with its CycloneDX SBOM.
#   scripts/image/build.sh [kubellm|llamacpp|all] [--push REGISTRY/REPO:TAG]
# Idempotent: an image whose inputs have not changed since its last build (content-hash
# stamp) is reused at once. Needs root (mmdebstrap into a directory, chroot).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
OUT="$ROOT/.tools/images"
CACHE="$OUT/cache"
SOURCE_URL="https://github.com/kubellm/kubellm"
PIP_VERSION="24.3.1"
# Every path kubellm or its libraries write is under /tmp, an emptyDir in every pod
# kubellm renders: the root filesystem can stay read-only.
IMAGE_ENV=(PATH=/opt/kubellm/bin:/usr/local/bin:/usr/bin:/bin HOME=/tmp TMPDIR=/tmp XDG_CACHE_HOME=/tmp/.cache
  MPLCONFIGDIR=/tmp/matplotlib HF_HOME=/tmp/.cache/huggingface PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 LANG=C.UTF-8)
# shellcheck source=scripts/image/lib.sh
source "$ROOT/scripts/image/lib.sh"

usage() { die "usage: scripts/image/build.sh [kubellm|llamacpp|all] [--push REGISTRY/REPO:TAG]"; }

targets=() push=""
while [ $# -gt 0 ]; do
  case "$1" in
    kubellm|llamacpp) targets+=("$1") ;;
    all) targets+=(kubellm llamacpp) ;;
    --push) [ $# -ge 2 ] || usage; push="$2"; shift ;;
    --push=*) push="${1#--push=}" ;;
    *) usage ;;
  esac
  shift
done
if [ ${#targets[@]} -eq 0 ]; then
  if [ -n "$push" ]; then targets=(kubellm); else targets=(kubellm llamacpp); fi
fi
[ -z "$push" ] || [ ${#targets[@]} -eq 1 ] || die "--push copies one image: name it (kubellm or llamacpp)"

[ "$(id -u)" = 0 ] || die "run as root: mmdebstrap builds into a directory and the install runs under chroot"
need_tool mmdebstrap mmdebstrap
need_tool umoci umoci
need_tool chroot coreutils
need_tool flock util-linux
[ -z "$push" ] || need_tool skopeo skopeo
HOST_PY="$ROOT/.venv/bin/python"
[ -x "$HOST_PY" ] || HOST_PY="$(command -v python3 || true)"
[ -n "$HOST_PY" ] || die "'python3' not found: install the Debian package 'python3'"
"$HOST_PY" -m pip --version >/dev/null 2>&1 || die "pip not found for $HOST_PY: install the Debian package 'python3-pip'"
VERSION="$(version)"
for lock in requirements.txt requirements-llamacpp.txt; do
  "$HOST_PY" "$ROOT/scripts/image/pins.py" --check "$ROOT/pyproject.toml" "$ROOT/scripts/image/$lock" || die "the pinned requirements are stale"
done

mkdir -p "$CACHE/wheels"
exec 9>"$OUT/.lock"
flock 9  # one build at a time: a second waits, then finds the first's stamp

pip_wheel() {
  local found
  found="$(ls "$CACHE"/pip-"$PIP_VERSION"-*.whl 2>/dev/null | head -1)"
  if [ -z "$found" ]; then
    "$HOST_PY" -m pip download -q --no-deps "pip==$PIP_VERSION" -d "$CACHE" || die "downloading pip $PIP_VERSION failed"
    found="$(ls "$CACHE"/pip-"$PIP_VERSION"-*.whl | head -1)"
  fi
  echo "$found"
}

# kubellm_wheel DIR: this tree's kubellm as a wheel, and its pin line (with its hash).
kubellm_wheel() {
  local dir="$1"
  "$HOST_PY" -m pip wheel -q --no-deps -w "$dir" "$ROOT" >/dev/null || die "building kubellm's wheel failed"
  local wheel; wheel="$(ls "$dir"/kubellm-"$VERSION"-*.whl)"
  echo "kubellm==$VERSION --hash=sha256:$(sha256sum "$wheel" | cut -c1-64)"
}

# llamacpp_wheel DIR: llama-cpp-python's pinned release built from source as local mode's
# setup builds it (portable: no -march=native), from pip's wheel cache when it has it.
llamacpp_wheel() {
  local dir="$1" pin
  pin="$(grep -i '^llama[-_]cpp[-_]python==' "$ROOT/scripts/image/requirements-llamacpp.txt")"
  need_tool cmake cmake
  need_tool g++ build-essential
  echo "== llamacpp: $pin (a first build compiles llama.cpp: minutes)"
  CMAKE_ARGS="-DGGML_NATIVE=OFF" nice -n 10 "$HOST_PY" -m pip wheel -q --no-deps -w "$dir" "$pin" >/dev/null \
    || die "building $pin failed"
}

# install_python NAME ROOTFS WORK: the image's virtual environment.
install_python() {
  local name="$1" rootfs="$2" work="$3" wheels="$3/wheels" requirements
  mkdir -p "$wheels"
  chroot "$rootfs" /usr/bin/python3 -m venv --without-pip /opt/kubellm
  if [ "$name" = kubellm ]; then
    fetch_wheels "$ROOT/scripts/image/requirements.txt" "$CACHE/wheels"
    { grep -v '^#' "$ROOT/scripts/image/requirements.txt"; kubellm_wheel "$wheels"; } > "$wheels/requirements.txt"
  else
    llamacpp_wheel "$wheels"
    grep -vi '^llama[-_]cpp[-_]python==' "$ROOT/scripts/image/requirements-llamacpp.txt" | grep -v '^#' > "$work/fetch.txt"
    fetch_wheels "$work/fetch.txt" "$CACHE/wheels"
    kubellm_wheel "$wheels" >/dev/null
    { grep -v '^#' "$ROOT/scripts/image/requirements-llamacpp.txt"; echo "kubellm==$VERSION"; } > "$wheels/requirements.txt"
  fi
  cp -l "$CACHE"/wheels/*.whl "$wheels/" 2>/dev/null || cp "$CACHE"/wheels/*.whl "$wheels/"
  venv_install "$rootfs" "$wheels" "$wheels/requirements.txt" "$(pip_wheel)"
}

build_one() {
  local name="$1" packages entrypoint ref
  case "$name" in
    kubellm) packages="python3,ca-certificates,tzdata"; ref="kubellm:$VERSION"
      entrypoint='["/opt/kubellm/bin/kubellm"]' ;;
    llamacpp) packages="python3,ca-certificates,tzdata,libgomp1,libstdc++6"; ref="kubellm-llamacpp:$VERSION"
      entrypoint='["/app/llama-server"]' ;;
  esac
  local archive="$OUT/$name.oci.tar" stamp
  stamp="$name-$(content_hash src/kubellm pyproject.toml README.md scripts/image)"
  if [ -s "$archive" ] && [ "$(cat "$OUT/$name.stamp" 2>/dev/null)" = "$stamp" ]; then
    echo "== $name: unchanged, reusing $archive ($ref)"
    return
  fi
  local started=$SECONDS work="$OUT/work-$name"
  rm -rf "$work" "$OUT/$name.stamp" "$archive.tmp"  # what an interrupted build left
  mkdir -p "$work/rootfs"
  trap 'rm -rf "$work"' EXIT
  base_rootfs "$name" "$packages" "$work/base.tar"
  ls -t "$CACHE"/base-"$name"-*.tar | tail -n +2 | xargs -r rm -f  # older bases of this image
  tar --numeric-owner -C "$work/rootfs" -xf "$work/base.tar"
  rm -f "$work/base.tar"
  echo "== $name: Python environment"
  install_python "$name" "$work/rootfs" "$work"
  if [ "$name" = llamacpp ]; then  # llama-server's flags, as rendered for the llamacpp engine
    install -D -m 0755 "$ROOT/scripts/image/llama_server.py" "$work/rootfs/app/llama-server"
  fi
  finish_rootfs "$work/rootfs"
  mkdir -p "$work/rootfs/usr/share/kubellm"
  "$HOST_PY" "$ROOT/scripts/image/sbom.py" "$work/rootfs" "${ref%%:*}" "$VERSION" > "$work/sbom.cdx.json"
  cp "$work/sbom.cdx.json" "$work/rootfs/usr/share/kubellm/sbom.cdx.json"
  echo "== $name: packing"
  pack "$work/rootfs" "$name" "$ref" "$archive" "$entrypoint"
  mv "$work/sbom.cdx.json" "$OUT/$name.cdx.json"
  echo "$ref" > "$OUT/$name.ref"
  echo "$stamp" > "$OUT/$name.stamp"
  rm -rf "$work"
  trap - EXIT
  echo "== $name: built $archive ($ref, $(du -m "$archive" | cut -f1) MB) in $((SECONDS - started)) s"
}

for target in "${targets[@]}"; do
  build_one "$target"
done
if [ -n "$push" ]; then
  "$ROOT/scripts/image/push.sh" "$OUT/${targets[0]}.oci.tar" "$push"
fi
