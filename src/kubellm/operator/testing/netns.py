"""The real node's network namespace: ``ip netns add``, a veth pair to the host, and routes
from the host to the pod and Service ranges through it. Nothing in the namespace can reach
beyond the host side of the veth (no default route), so test traffic never leaves the machine.

Errors: ``NetnsError`` (an ``ip`` command failed; the message has its output).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from kubellm.operator.testing.nodeconfig import NodeNetwork

NETNS_DIR = Path("/run/netns")


class NetnsError(RuntimeError):
    """Creating or deleting the node's network namespace failed."""


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(["ip", *args], capture_output=True, text=True)
    if check and result.returncode != 0:
        raise NetnsError(f"ip {' '.join(args)}: {result.stderr.strip() or result.stdout.strip()}")
    return result


def in_netns(network: NodeNetwork, argv: list[str]) -> list[str]:
    """*argv* run inside the namespace. nsenter enters only the network namespace: unlike
    ``ip netns exec`` it keeps the host's mount namespace, which containerd and the kubelet
    must share (the kubelet mounts volumes that containerd bind-mounts into containers)."""
    return ["nsenter", f"--net={NETNS_DIR / network.netns}", "--", *argv]


def create(network: NodeNetwork) -> None:
    """Create the namespace, the veth pair and the routes; half-made state is removed on error."""
    try:
        _ip("netns", "add", network.netns)
        _ip("link", "add", network.host_veth, "type", "veth", "peer", "name", network.node_veth, "netns", network.netns)
        _ip("addr", "add", f"{network.host_ip}/{network.prefix}", "dev", network.host_veth)
        _ip("link", "set", network.host_veth, "up")
        inside = ("-n", network.netns)
        _ip(*inside, "addr", "add", f"{network.node_ip}/{network.prefix}", "dev", network.node_veth)
        _ip(*inside, "link", "set", network.node_veth, "up")
        _ip(*inside, "link", "set", "lo", "up")
        # The host reaches pods and ClusterIPs through the node, as a client outside a cluster
        # reaches them through a node or a load balancer.
        for cidr in (network.pod_cidr, network.service_cidr):
            _ip("route", "add", cidr, "via", network.node_ip, "dev", network.host_veth)
    except NetnsError:
        delete(network)
        raise


def delete(network: NodeNetwork) -> None:
    """Remove what ``create`` made (the routes go with the veth); absent parts are fine."""
    _ip("link", "del", network.host_veth, check=False)
    _ip("netns", "del", network.netns, check=False)
    # `ip netns add` bind-mounts /run/netns onto itself the first time; with no namespace
    # left in it, that mount is ours to undo (the next `ip netns add` makes it again).
    # (a bind mount of the same file system: os.path.ismount cannot see it, /proc/mounts can)
    mounts = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()]
    if str(NETNS_DIR) in mounts and NETNS_DIR.is_dir() and not any(NETNS_DIR.iterdir()):
        subprocess.run(["umount", str(NETNS_DIR)], capture_output=True, check=False)


def leftovers(network: NodeNetwork) -> list[str]:
    """What of a previous run's network is still there."""
    found = []
    if (NETNS_DIR / network.netns).exists():
        found.append(f"network namespace {network.netns}")
    if _ip("link", "show", network.host_veth, check=False).returncode == 0:
        found.append(f"link {network.host_veth}")
    return found
