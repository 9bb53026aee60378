#!/usr/bin/env bash
# Copies a built image archive to a registry:
#   scripts/image/push.sh ARCHIVE REGISTRY/REPO:TAG
# KUBELLM_PUSH_TLS_VERIFY=false talks plain HTTP (a registry on loopback, say).
# The registry is asked first whether it answers at all, so an unreachable one stops
# the push with a message naming it before any blob is sent; a registry only serves a
# tag once its manifest, sent last, is stored, so a push cut short leaves no tag.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
# shellcheck source=scripts/image/lib.sh
source "$ROOT/scripts/image/lib.sh"

[ $# -eq 2 ] || die "usage: scripts/image/push.sh ARCHIVE REGISTRY/REPO:TAG"
archive="$1" dest="$2"
[ -s "$archive" ] || die "no image archive at $archive: build it first (scripts/image/build.sh)"
need_tool skopeo skopeo
case "$dest" in
  */*:*) ;;
  *) die "push destination '$dest' is not REGISTRY/REPO:TAG (for example 127.0.0.1:5000/kubellm:0.1.0)" ;;
esac
registry="${dest%%/*}"
tls="${KUBELLM_PUSH_TLS_VERIFY:-true}"
scheme=https; [ "$tls" = false ] && scheme=http
HOST_PY="$(command -v python3 || true)"
[ -n "$HOST_PY" ] || die "'python3' not found: install the Debian package 'python3'"

# Any HTTP answer from /v2/ (200, or 401 asking for credentials) means a registry is there.
if ! "$HOST_PY" - "$scheme://$registry/v2/" <<'PY'
import sys, urllib.error, urllib.request
try:
    urllib.request.urlopen(sys.argv[1], timeout=10)
except urllib.error.HTTPError:
    pass
except (OSError, ValueError) as error:
    print(f"{sys.argv[1]}: {getattr(error, 'reason', error)}", file=sys.stderr)
    sys.exit(1)
PY
then
  die "registry $registry is unreachable ($scheme); nothing was pushed. Check the address, that the registry runs, and KUBELLM_PUSH_TLS_VERIFY=false for a plain-HTTP one"
fi
skopeo copy --quiet --dest-tls-verify="$tls" "oci-archive:$archive" "docker://$dest" \
  || die "pushing to $dest failed (see skopeo's message above); the registry serves no tag for an unfinished push"
echo "== pushed $archive to $dest"
