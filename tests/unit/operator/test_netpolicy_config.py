"""The real node's NetworkPolicy engine as data: kube-router's command line and RBAC, and how
its iptables and ipset state is recognised (what ``realnode clean`` must leave empty)."""

from __future__ import annotations

from pathlib import Path

from kubellm.operator.testing.netpolicy import parse_state, without_engine_rules
from kubellm.operator.testing.nodeconfig import POLICY_ENGINE_USER, NodeNetwork, kube_router_args, kube_router_rbac


def test_kube_router_runs_only_its_firewall_on_the_nodes_service_range() -> None:
    args = kube_router_args(NodeNetwork(), "kubellm-node", Path("/k/kubeconfig"))
    assert {"--run-firewall=true", "--run-router=false", "--run-service-proxy=false"} <= set(args)
    assert "--service-cluster-ip-range=10.215.0.0/24" in args and "--hostname-override=kubellm-node" in args
    assert "--kubeconfig=/k/kubeconfig" in args


def test_kube_router_may_only_read_and_is_bound_to_its_certificates_user() -> None:
    role, binding = kube_router_rbac()
    verbs = {verb for rule in role["rules"] for verb in rule["verbs"]}
    resources = {res for rule in role["rules"] for res in rule["resources"]}
    assert verbs == {"get", "list", "watch"}
    assert {"networkpolicies", "pods", "namespaces", "nodes"} <= resources
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert binding["subjects"] == [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": POLICY_ENGINE_USER}]


IPTABLES_SAVE = """*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:KUBE-FIREWALL - [0:0]
:KUBE-ROUTER-FORWARD - [0:0]
:KUBE-POD-FW-ABCDEF - [0:0]
:KUBE-NWPLCY-DEFAULT - [0:0]
-A INPUT -j KUBE-FIREWALL
-A FORWARD -m comment --comment "kube-router netpol" -j KUBE-ROUTER-FORWARD
-A KUBE-FIREWALL -m conntrack --ctstate INVALID -j DROP
-A KUBE-ROUTER-FORWARD -d 10.214.0.5/32 -j KUBE-POD-FW-ABCDEF
-A KUBE-POD-FW-ABCDEF -m mark ! --mark 0x10000/0x10000 -j REJECT
COMMIT
"""


def test_state_names_the_engines_chains_and_sets_not_kube_proxys() -> None:
    found = parse_state(IPTABLES_SAVE, "KUBE-DST-X1\nKUBE-SRC-Y2\nother\n")
    assert found == [
        "iptables chain KUBE-ROUTER-FORWARD", "iptables chain KUBE-POD-FW-ABCDEF", "iptables chain KUBE-NWPLCY-DEFAULT",
        "ipset KUBE-DST-X1", "ipset KUBE-SRC-Y2",
    ]
    assert parse_state("*filter\n:INPUT ACCEPT [0:0]\nCOMMIT\n", "") == []


def test_cleanup_keeps_kube_proxys_rules_and_drops_every_line_of_the_engines_chains() -> None:
    assert without_engine_rules(IPTABLES_SAVE) == """*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:KUBE-FIREWALL - [0:0]
-A INPUT -j KUBE-FIREWALL
-A KUBE-FIREWALL -m conntrack --ctstate INVALID -j DROP
COMMIT
"""
