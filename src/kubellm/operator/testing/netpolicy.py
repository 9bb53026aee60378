"""The real node's NetworkPolicy engine: kube-router's network-policy controller (its firewall
only), run in the node's network namespace, where it programs iptables chains (``KUBE-ROUTER-*``,
``KUBE-POD-FW-*``, ``KUBE-NWPLCY-*``) and ipsets (``KUBE-SRC-*``, ``KUBE-DST-*``). This module
reads and removes that state; the arguments and RBAC are data in ``nodeconfig``; ``realnode``
starts the process.

iptables and ipsets belong to a network namespace, so deleting the node's namespace drops
them too; ``cleanup`` still removes them first (the harness's stop and ``realnode clean``),
so that a namespace that could not be deleted is not left filtering. It does so itself:
``kube-router --cleanup-config`` in v2.1.0 leaves the policy controller's chains and sets
(its cleanup runs on an unconfigured controller, which has no iptables handlers).

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
CHAIN_PREFIXES = ("KUBE-ROUTER-", "KUBE-POD-FW-", "KUBE-NWPLCY-")
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


def without_engine_rules(iptables_save: str) -> str:
    """*iptables_save* (one table) less the engine's chains and every rule in or jumping to
    them; kube-proxy's rules stay."""
    lines = iptables_save.splitlines(keepends=True)
    return "".join(line for line in lines if not any(c.startswith(CHAIN_PREFIXES) for c in _chains_named(line)))


def _chains_named(line: str) -> list[str]:
    """The chains an ``iptables-save`` line declares, appends to, or jumps or goes to."""
    words = line.split()
    if not words:
        return []
    if words[0].startswith(":"):
        return [words[0][1:]]
    named = [words[1]] if words[0] in ("-A", "-I") and len(words) > 1 else []
    return named + [words[i + 1] for i, word in enumerate(words[:-1]) if word in ("-j", "-g")]


def cleanup(network: NodeNetwork) -> list[str]:
    """Remove the engine's rules and sets from the node's namespace (stop the engine first, or
    it puts them back); returns what is left."""
    if not (netns.NETNS_DIR / network.netns).exists():
        return []
    dump = _in_node(network, "iptables-save", "-t", "filter").stdout
    kept = without_engine_rules(dump)
    if kept != dump:
        subprocess.run(netns.in_netns(network, ["iptables-restore"]), input=kept, capture_output=True, text=True, check=False)
    for name in _in_node(network, "ipset", "list", "-n").stdout.split():
        if name.startswith(IPSET_PREFIXES):
            _in_node(network, "ipset", "destroy", name)
    return state(network)
