"""The real node's configuration as data (operator/testing/nodeconfig.py): the settings these
machines need are there, and every path the node writes, except the fixed host paths, is
under its own state directory."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

from kubellm.operator.testing.nodeconfig import (
    CGROUP_ROOT,
    PAUSE_IMAGE,
    NodeNetwork,
    NodePaths,
    cni_conflist,
    containerd_config,
    kube_proxy_config,
    kubelet_config,
    kubernetes_endpoint_slice,
)
from kubellm.operator.testing.realnode import _normalise, _repository

STATE = Path("/tmp/node-state")
NETWORK = NodeNetwork()


def test_containerd_config_has_what_these_machines_need() -> None:
    config = tomllib.loads(containerd_config(NodePaths(STATE)))
    cri = config["plugins"]["io.containerd.grpc.v1.cri"]
    assert cri["restrict_oom_score_adj"] is True  # no CAP_SYS_RESOURCE here
    assert cri["sandbox_image"] == PAUSE_IMAGE
    assert cri["containerd"]["runtimes"]["runc"]["options"]["SystemdCgroup"] is False
    assert cri["containerd"]["snapshotter"] == "overlayfs"
    assert "io.containerd.internal.v1.opt" in config["disabled_plugins"]  # it writes /opt/containerd
    for path in (config["root"], config["state"], config["grpc"]["address"], cri["cni"]["conf_dir"]):
        assert Path(path).is_relative_to(STATE)


def test_cni_bridge_allocates_from_the_pod_range_into_the_state_directory() -> None:
    conflist = json.loads(cni_conflist(NETWORK, NodePaths(STATE)))
    bridge = conflist["plugins"][0]
    assert (bridge["type"], bridge["bridge"], bridge["ipMasq"]) == ("bridge", NETWORK.bridge, True)
    assert bridge["ipam"]["ranges"] == [[{"subnet": NETWORK.pod_cidr}]]
    assert Path(bridge["ipam"]["dataDir"]).is_relative_to(STATE)


def test_kubelet_config_cgroupfs_on_cgroup_v1_under_its_own_root() -> None:
    config = kubelet_config(NETWORK, NodePaths(STATE), STATE / "ca.crt", (10250, 10248))
    assert (config["cgroupDriver"], config["failCgroupV1"], config["cgroupRoot"]) == ("cgroupfs", False, f"/{CGROUP_ROOT}")
    assert config["address"] == NETWORK.node_ip
    assert config["authentication"]["anonymous"]["enabled"] is False
    assert config["imageGCHighThresholdPercent"] == 100  # imported images cannot be pulled back
    assert Path(config["podLogsDir"]).is_relative_to(STATE)


def test_kube_proxy_iptables_for_the_pod_range() -> None:
    config = kube_proxy_config(NETWORK, "n", STATE / "kp.kubeconfig", (10256, 10249))
    assert (config["mode"], config["clusterCIDR"], config["hostnameOverride"]) == ("iptables", NETWORK.pod_cidr, "n")
    assert config["conntrack"]["maxPerCore"] == 0  # the host's conntrack table is not ours to resize


def test_kubernetes_service_points_at_the_host_side_of_the_veth() -> None:
    slice_ = kubernetes_endpoint_slice(NETWORK, 6443)
    assert slice_["endpoints"][0]["addresses"] == [NETWORK.host_ip]
    assert slice_["ports"][0]["port"] == 6443
    assert NETWORK.kubernetes_service_ip == "10.215.0.1"


def test_image_names_as_containerd_stores_them() -> None:
    assert _normalise("kubellm:0.1.0") == "docker.io/library/kubellm:0.1.0"
    assert _normalise("org/x:1") == "docker.io/org/x:1"
    assert _normalise("registry.k8s.io/pause:3.10") == "registry.k8s.io/pause:3.10"
    assert _normalise("localhost/x:1") == "localhost/x:1"
    assert _repository("kubellm.test/testbox:1") == "kubellm.test/testbox"
