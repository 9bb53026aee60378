# Sourced by the scripts that build tools from pinned Go wrapper modules into .tools/bin
# (scripts/controlplane/build.sh, scripts/netpol/build.sh, scripts/setup/autoscale.sh).
# Each binary has a stamp file, .tools/bin/.NAME.version, naming the version it was built at:
# a binary whose stamp names the pinned version is skipped. Go's caches (~/.cache/go-build,
# ~/go/pkg/mod) make a rebuild after a version bump incremental. Builds run niced: the machine
# is shared.
# Before calling: GOBUILD_BIN (where binaries go) and GOBUILD_LABEL (the log lines' prefix);
# GOBUILD_CHECK=1 reports what is missing (status 1) instead of building.
export CGO_ENABLED=0
export GOFLAGS="${GOFLAGS:--buildvcs=false} -mod=mod"

stamp_ok() {  # stamp_ok NAME VERSION
  [ -x "$GOBUILD_BIN/$1" ] && [ "$(cat "$GOBUILD_BIN/.$1.version" 2>/dev/null)" = "$2" ]
}

go_build() {  # go_build MODULE_DIR VERSION LDFLAGS NAME=PACKAGE...
  # One NAME=PACKAGE: the binary is NAME. Several: one go build, each binary named after its
  # package's last path element (which NAME must be).
  local dir="$1" version="$2" ldflags="$3"; shift 3
  local todo=() spec
  for spec in "$@"; do
    stamp_ok "${spec%%=*}" "$version" || todo+=("$spec")
  done
  [ ${#todo[@]} -eq 0 ] && { echo "$GOBUILD_LABEL: ${*%%=*} $version up to date"; return 0; }
  if [ "${GOBUILD_CHECK:-0}" = 1 ]; then
    echo "$GOBUILD_LABEL: missing ${todo[*]%%=*} ($version)"; return 1
  fi
  command -v go >/dev/null 2>&1 || { echo "$GOBUILD_LABEL: Go toolchain not found (needed to build ${todo[*]%%=*})" >&2; return 1; }
  local start=$SECONDS pkgs=() out="$GOBUILD_BIN/"
  for spec in "${todo[@]}"; do pkgs+=("${spec#*=}"); done
  [ ${#todo[@]} -eq 1 ] && out="$GOBUILD_BIN/${todo[0]%%=*}"
  mkdir -p "$GOBUILD_BIN"
  echo "$GOBUILD_LABEL: building ${todo[*]%%=*} $version ..."
  (cd "$dir" && nice -n 10 go build -trimpath -ldflags "-s -w $ldflags" -o "$out" "${pkgs[@]}")
  for spec in "${todo[@]}"; do echo "$version" > "$GOBUILD_BIN/.${spec%%=*}.version"; done
  echo "$GOBUILD_LABEL: built ${todo[*]%%=*} in $((SECONDS - start))s"
}
