"""The real node's NetworkPolicy engine: kube-router's network-policy controller (its firewall
only), run in the node's network namespace, where it programs iptables chains (``KUBE-ROUTER-*``,
``KUBE-POD-FW-*``, ``KUBE-NWPLCY-*``) and ipsets. This module reads and removes that state;
the arguments and RBAC are data in ``nodeconfig``; ``realnode`` starts the process.

iptables and ipsets belong to a network namespace, so deleting the node's namespace drops
them too; ``clean`` still runs ``kube-router --cleanup-config`` first, so that a namespace that
could not be deleted is not left filtering.

Errors: none of its own; ``realnode`` reports what ``missing`` finds as a ``RealNodeError``.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

from kubellm.operator.testing import netns
from kubellm.operator.testing.nodeconfig import NodeNetwork

ROOT = Path(__file__).resolve().parents[4]
BINARY = ROOT / ".tools" / "bin" / "kube-router"
HOST_TOOLS = ("ipset", "iptables", "iptables-save")
CHAIN_PREFIXES = ("KUBE-ROUTER-", "KUBE-POD-FW-", "KUBE-NWPLCY-", "KUBE-SRC-", "KUBE-DST-")
IPSET_PREFIXES = ("KUBE-SRC-", "KUBE-DST-", "inet6:")


def missing(which: Callable[[str], bool]) -> list[str]:
    """What the engine needs and this host lacks, each with what provides it (*which*: is a
    host tool on the path)."""
    found = [f"{tool} (scripts/setup/netpol.sh installs it)" for tool in HOST_TOOLS if not which(tool)]
    if not BINARY.is_file():
        found.append(f"{BINARY} (build it with scripts/netpol/build.sh)")
    return found


def _in_node(network: NodeNetwork, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(netns.in_netns(network, list(argv)), capture_output=True, text=True, check=False)


def state(network: NodeNetwork) -> list[str]:
    """The engine's iptables chains and ipsets in the node's namespace (empty: none, or no
    namespace)."""
    if not (netns.NETNS_DIR / network.netns).exists():
        return []
    return parse_state(_in_node(network, "iptables-save", "-t", "filter").stdout, _in_node(network, "ipset", "list", "-n").stdout)


def parse_state(iptables_save: str, ipset_names: str) -> list[str]:
    """The engine's chains in ``iptables-save`` output and its sets in ``ipset list -n``'s."""
    chains = [line.split()[0][1:] for line in iptables_save.splitlines() if line.startswith(":") and line[1:].startswith(CHAIN_PREFIXES)]
    sets = [name for name in ipset_names.split() if name.startswith(IPSET_PREFIXES)]
    return [f"iptables chain {c}" for c in chains] + [f"ipset {s}" for s in sets]


def cleanup(network: NodeNetwork) -> list[str]:
    """Remove the engine's rules and sets from the node's namespace; returns what is left."""
    if (netns.NETNS_DIR / network.netns).exists() and BINARY.is_file():
        _in_node(network, str(BINARY), "--cleanup-config")
    return state(network)
