#!/usr/bin/env bash
# What the real node's network-policy engine needs (docs/realnode.md, "NetworkPolicies enforced"):
#   - Debian packages: ipset and iptables (kube-router programs both inside the node's
#     network namespace);
#   - kube-router, built by scripts/netpol/build.sh from its pinned Go module.
# Idempotent and quick when everything is there. Needs root (CI runs it as root).
set -euo pipefail
cd "$(dirname "$0")/../.."

PACKAGES=(ipset iptables)

missing=()
for package in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "ok installed" || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  echo "netpol: installing ${missing[*]}"
  apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends "${missing[@]}" >/dev/null 2>&1 \
    || { apt-get update >/dev/null && apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends "${missing[@]}" >/dev/null; }
fi

bash scripts/netpol/build.sh
