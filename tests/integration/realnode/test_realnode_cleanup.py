"""A run killed with SIGKILL leaves the real node's processes, mounts, cgroups and network
namespace behind (with ``network_policy=True`` also kube-router, its iptables chains and ipsets):
the next start refuses, naming them and the command that removes them, and that command
leaves the host as it was."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from kubellm.operator.testing import hoststate, netns, netpolicy
from kubellm.operator.testing.nodeconfig import NodeNetwork
from kubellm.operator.testing.realnode import RECORD, RealNodeBusy, check_free

pytestmark = [pytest.mark.realnode, pytest.mark.controlplane]

KILLED_RUN = """
import os, signal, sys
from pathlib import Path
from kubellm.operator.testing.realnode import real_cluster
with real_cluster(Path(sys.argv[1]), network_policy=sys.argv[2] == "policy") as (plane, node):
    print("ready", flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
"""


@pytest.mark.parametrize("network_policy", [False, True], ids=["plain", "network-policy"])
def test_leftovers_of_a_killed_run_are_refused_then_cleaned(tmp_path: Path, network_policy: bool) -> None:
    mode = "policy" if network_policy else "plain"
    killed = subprocess.run([sys.executable, "-c", KILLED_RUN, str(tmp_path), mode], capture_output=True, text=True, timeout=180)
    assert "ready" in killed.stdout, killed.stderr[-3000:]
    assert killed.returncode == -9
    assert hoststate.cgroup_pids() or hoststate.pids_naming(str(tmp_path)), "the killed run left no process behind"
    if network_policy:
        assert "iptables chain KUBE-ROUTER-FORWARD" in netpolicy.state(NodeNetwork())
        assert hoststate.pids_naming(str(netpolicy.BINARY)), "the killed run left no kube-router behind"

    with pytest.raises(RealNodeBusy) as refused:
        check_free(NodeNetwork())
    message = str(refused.value)
    assert "kubellm.operator.testing.realnode clean" in message and "kubellm-node" in message

    clean = subprocess.run([sys.executable, "-m", "kubellm.operator.testing.realnode", "clean"], capture_output=True, text=True, timeout=120)
    assert clean.returncode == 0, clean.stderr
    assert hoststate.leftovers() == [] and netns.leftovers(NodeNetwork()) == []
    assert not RECORD.exists()
    assert hoststate.pids_naming(str(tmp_path)) == set()
    assert hoststate.pids_naming(str(netpolicy.BINARY)) == set() and netpolicy.state(NodeNetwork()) == []
    assert hoststate.mounts_under([tmp_path]) == []
    check_free(NodeNetwork())
