#!/usr/bin/env bash
# What the real node of the test cluster needs (see docs/realnode.md):
#   - Debian packages: containerd, runc, the CNI plugins, iptables and conntrack (kube-proxy),
#     umoci and mmdebstrap (images built without Docker), busybox-static (the harness's own
#     small test image), docker-registry and skopeo (the node pulls kubellm's images from a
#     registry in its network namespace);
#   - kubelet and kube-proxy, built by scripts/controlplane/build.sh from the control plane's
#     pinned k8s.io/kubernetes module (controlplane.sh runs it; this script checks);
#   - the pause image and a small test image (scripts/node/images.sh): no registry is reachable.
# Idempotent and quick when everything is there. Needs root (CI runs it as root).
set -euo pipefail
cd "$(dirname "$0")/../.."

PACKAGES=(containerd runc containernetworking-plugins iptables conntrack umoci mmdebstrap busybox-static docker-registry skopeo)

missing=()
for package in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "ok installed" || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  echo "node: installing ${missing[*]}"
  apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends "${missing[@]}" >/dev/null 2>&1 \
    || { apt-get update >/dev/null && apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends "${missing[@]}" >/dev/null; }
  # The package starts nothing in a container without systemd; the harness runs its own
  # containerd with its own config. Stop a packaged one in case something started it.
  service containerd stop >/dev/null 2>&1 || true
fi

bash scripts/node/images.sh
