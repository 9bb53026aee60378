"""What the real node of the test cluster is made of, as data: its addresses, the host paths it
owns, and the configuration files of containerd, the CNI bridge, the kubelet and kube-proxy.

Pure: nothing here touches the machine (``realnode.py`` writes these files and starts the
processes). The settings that these machines need and why are in docs/realnode.md.
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

PAUSE_IMAGE = "registry.k8s.io/pause:3.10"
"""The tag containerd's ``sandbox_image`` names; scripts/node/images.sh builds it from pause.c."""

REAL_NODE_LABEL = "kubellm.dev/real-node"
REGISTRY = "localhost:5000"
"""The node's registry, as its containerd reaches it (plain HTTP, inside the node's namespace).
Rendered pods pull ``Always`` (checkov's rule), so their images must come from a registry."""
REGISTRY_PORT = 5000


@dataclass(frozen=True)
class NodeNetwork:
    """Addresses of the node's network namespace. The host side of the veth pair is the only
    way in or out: the namespace has no default route, so no pod traffic can leave it, and the
    host does not forward (``ip_forward`` stays as it is on the host)."""

    netns: str = "kubellm-node"
    host_veth: str = "kubellm-h0"
    node_veth: str = "kubellm-n0"
    bridge: str = "kubellm0"
    host_ip: str = "10.213.0.1"
    node_ip: str = "10.213.0.2"
    prefix: int = 24
    pod_cidr: str = "10.214.0.0/24"
    service_cidr: str = "10.215.0.0/24"

    @property
    def kubernetes_service_ip(self) -> str:
        """The first address of the service range: the API server's own ClusterIP."""
        return str(next(ipaddress.ip_network(self.service_cidr).hosts()))


@dataclass(frozen=True)
class NodePaths:
    """Where one real node keeps its state: everything under *state*, except the host paths
    that containerd 1.6, the kubelet and the CNI plugins use whatever they are told
    (``FIXED_HOST_PATHS``)."""

    state: Path

    @property
    def containerd_root(self) -> Path:
        return self.state / "containerd" / "root"

    @property
    def containerd_state(self) -> Path:
        return self.state / "containerd" / "state"

    @property
    def containerd_socket(self) -> Path:
        return self.state / "containerd" / "containerd.sock"

    @property
    def containerd_config(self) -> Path:
        return self.state / "containerd" / "config.toml"

    @property
    def cni_conf_dir(self) -> Path:
        return self.state / "cni" / "net.d"

    @property
    def cni_ipam_dir(self) -> Path:
        return self.state / "cni" / "ipam"

    @property
    def kubelet_root(self) -> Path:
        return self.state / "kubelet"

    @property
    def kubelet_config(self) -> Path:
        return self.state / "kubelet-config.yaml"

    @property
    def pod_logs(self) -> Path:
        return self.state / "pod-logs"

    @property
    def resolv_conf(self) -> Path:
        return self.state / "resolv.conf"

    @property
    def registry_root(self) -> Path:
        return self.state / "registry"

    @property
    def registry_config(self) -> Path:
        return self.state / "registry.yaml"

    @property
    def kube_proxy_config(self) -> Path:
        return self.state / "kube-proxy-config.yaml"


FIXED_HOST_PATHS = (
    Path("/run/containerd"),  # containerd 1.6 puts its shims' sockets in /run/containerd/s
    Path("/var/lib/kubelet"),  # the kubelet's device-plugin and pod-resources sockets
    Path("/var/lib/cni"),  # libcni's result cache
    Path("/var/log/containers"),  # the kubelet's log symlinks
)
"""Host paths the node writes whatever it is configured with: one node per machine at a time."""

CGROUP_ROOT = "kubellm-node"
"""The kubelet's ``cgroupRoot``: every pod cgroup of the node is under this one, per controller."""


def containerd_config(paths: NodePaths) -> str:
    """containerd 1.6's config (TOML, version 2). ``restrict_oom_score_adj`` because these
    machines lack CAP_SYS_RESOURCE (without it every sandbox fails in runc); cgroupfs because
    there is no systemd; the plugins that would write outside *paths* are disabled."""
    cri = 'plugins."io.containerd.grpc.v1.cri"'
    return f"""version = 2
root = "{paths.containerd_root}"
state = "{paths.containerd_state}"
disabled_plugins = ["io.containerd.internal.v1.opt", "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.tracing.processor.v1.otlp"]

[grpc]
  address = "{paths.containerd_socket}"

[ttrpc]
  address = "{paths.containerd_socket}.ttrpc"

[{cri}]
  sandbox_image = "{PAUSE_IMAGE}"
  restrict_oom_score_adj = true
  enable_selinux = false

[{cri}.containerd]
  snapshotter = "overlayfs"
  default_runtime_name = "runc"

[{cri}.containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"

[{cri}.containerd.runtimes.runc.options]
  SystemdCgroup = false

[{cri}.cni]
  bin_dir = "/usr/lib/cni"
  conf_dir = "{paths.cni_conf_dir}"

[{cri}.registry.mirrors."{REGISTRY}"]
  endpoint = ["http://{REGISTRY}"]
"""


def registry_config(paths: NodePaths) -> dict[str, Any]:
    """Debian's docker-registry (distribution 2.8) on every address of the node's namespace:
    containerd reaches it as localhost, the host (to push) at the node's address."""
    return {
        "version": 0.1,
        "log": {"level": "warn", "accesslog": {"disabled": True}},
        "storage": {"filesystem": {"rootdirectory": str(paths.registry_root)}, "delete": {"enabled": True}},
        "http": {"addr": f"0.0.0.0:{REGISTRY_PORT}"},
    }


def cni_conflist(network: NodeNetwork, paths: NodePaths) -> str:
    """A bridge with host-local addresses from the pod range; IP masquerade so that pods reach
    the API server on the host side of the veth with the node's address."""
    bridge: dict[str, Any] = {
        "type": "bridge",
        "bridge": network.bridge,
        "isGateway": True,
        "ipMasq": True,
        "hairpinMode": True,
        "ipam": {
            "type": "host-local",
            "ranges": [[{"subnet": network.pod_cidr}]],
            "routes": [{"dst": "0.0.0.0/0"}],
            "dataDir": str(paths.cni_ipam_dir),
        },
    }
    conflist = {"cniVersion": "0.4.0", "name": "kubellm-node", "plugins": [bridge, {"type": "portmap", "capabilities": {"portMappings": True}}]}
    return json.dumps(conflist, indent=2)


def kubelet_config(network: NodeNetwork, paths: NodePaths, ca: Path, ports: tuple[int, int]) -> dict[str, Any]:
    """KubeletConfiguration. cgroupfs and ``failCgroupV1: false`` because these machines have
    cgroup v1 and no systemd; eviction and image GC thresholds low so that a busy shared disk
    never evicts the test's pods or deletes its imported images (they cannot be pulled back)."""
    port, healthz = ports
    return {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "cgroupDriver": "cgroupfs",
        "cgroupRoot": f"/{CGROUP_ROOT}",
        "failCgroupV1": False,
        "failSwapOn": False,
        "containerRuntimeEndpoint": f"unix://{paths.containerd_socket}",
        "address": network.node_ip,
        "port": port,
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": healthz,
        "authentication": {"anonymous": {"enabled": False}, "webhook": {"enabled": False}, "x509": {"clientCAFile": str(ca)}},
        # Only the API server (its client certificate, from our CA) reaches this port.
        "authorization": {"mode": "AlwaysAllow"},
        "podLogsDir": str(paths.pod_logs),
        "resolvConf": str(paths.resolv_conf),
        "clusterDomain": "cluster.local",
        "serializeImagePulls": False,
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        "evictionHard": {"memory.available": "100Mi", "nodefs.available": "1%", "imagefs.available": "1%", "nodefs.inodesFree": "1%"},
        "nodeStatusReportFrequency": "10s",
        "syncFrequency": "10s",
        "shutdownGracePeriod": "0s",
        "registerWithTaints": [],
        "maxPods": 110,
    }


def kube_proxy_config(network: NodeNetwork, node: str, kubeconfig: Path, ports: tuple[int, int]) -> dict[str, Any]:
    """KubeProxyConfiguration in iptables mode. ``masqueradeAll`` so that a pod reaching a
    Service whose endpoint is on the same bridge gets its reply through the NAT; conntrack
    limits left as they are (they are the host's, not the namespace's)."""
    healthz, metrics = ports
    return {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "mode": "iptables",
        "clientConnection": {"kubeconfig": str(kubeconfig)},
        "hostnameOverride": node,
        "bindAddress": network.node_ip,
        "clusterCIDR": network.pod_cidr,
        "healthzBindAddress": f"127.0.0.1:{healthz}",
        "metricsBindAddress": f"127.0.0.1:{metrics}",
        "iptables": {"masqueradeAll": True, "syncPeriod": "30s", "minSyncPeriod": "0s"},
        "conntrack": {"maxPerCore": 0, "min": 0, "tcpEstablishedTimeout": "0s", "tcpCloseWaitTimeout": "0s"},
    }


def kubernetes_endpoint_slice(network: NodeNetwork, port: int) -> dict[str, Any]:
    """The endpoint of the ``kubernetes`` Service: the API server on the host side of the veth.
    The control plane runs with ``--endpoint-reconciler-type=none`` (on loopback, its address
    would be rejected), so nothing else writes it."""
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": "kubernetes",
            "namespace": "default",
            "labels": {"kubernetes.io/service-name": "kubernetes", "endpointslice.kubernetes.io/managed-by": "kubellm-test"},
        },
        "addressType": "IPv4",
        "endpoints": [{"addresses": [network.host_ip], "conditions": {"ready": True}}],
        "ports": [{"name": "https", "port": port, "protocol": "TCP"}],
    }


LOCAL_STORAGE_CLASS = "kubellm-local"
VOLUME_KINDS = frozenset({"PersistentVolumeClaim", "PersistentVolume"})


def kwok_stages_without_volumes(stages: str) -> str:
    """kwok's Stages minus those that provision and bind volumes: with a real node, claims
    must bind to volumes that exist on it (``local_volume``), not to kwok's made-up ones."""
    kept = [doc for doc in yaml.safe_load_all(stages) if doc and doc["spec"]["resourceRef"]["kind"] not in VOLUME_KINDS]
    return yaml.safe_dump_all(kept, sort_keys=False)


def local_storage_class() -> dict[str, Any]:
    """The cluster's default StorageClass: pre-made local volumes, bound once a pod is placed."""
    return {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {"name": LOCAL_STORAGE_CLASS, "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
        "provisioner": "kubernetes.io/no-provisioner",
        "volumeBindingMode": "WaitForFirstConsumer",
        "reclaimPolicy": "Retain",
    }


def local_volume(name: str, path: Path, node: str, capacity: str = "1Ti") -> dict[str, Any]:
    """A ``local`` PersistentVolume on the real node. ``local`` rather than ``hostPath``: the
    kubelet applies a pod's fsGroup to it, so non-root pods can write their cache."""
    affinity = {"key": "kubernetes.io/hostname", "operator": "In", "values": [node]}
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": name, "labels": {REAL_NODE_LABEL: "true"}},
        "spec": {
            "capacity": {"storage": capacity},
            "accessModes": ["ReadWriteOnce", "ReadWriteMany", "ReadOnlyMany"],
            "persistentVolumeReclaimPolicy": "Retain",
            "storageClassName": LOCAL_STORAGE_CLASS,
            "local": {"path": str(path)},
            "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [affinity]}]}},
        },
    }


POLICY_ENGINE_USER = "system:kube-router"
POLICY_ENGINE_HEALTH_PORT = 20244
APISERVER_POLICY_PORT = 6443
"""The API server's port when policies are enforced: a policy is matched after a Service's
address translation, so a pod reaching ``kubernetes:443`` is seen going to the API server's
own port, and kubellm's gateway policy allows 443 and 6443 (kubeadm's), not a random one."""


def kube_router_args(network: NodeNetwork, node: str, kubeconfig: Path) -> list[str]:
    """kube-router as the node's NetworkPolicy engine only: the firewall (iptables and ipset in
    the node's namespace), no BGP router, no service proxy (kube-proxy has the Services)."""
    return [
        f"--kubeconfig={kubeconfig}",
        f"--hostname-override={node}",
        "--run-firewall=true",
        "--run-router=false",
        "--run-service-proxy=false",
        f"--service-cluster-ip-range={network.service_cidr}",
        f"--health-port={POLICY_ENGINE_HEALTH_PORT}",
        "--metrics-port=0",
        "--iptables-sync-period=1m",
        "--v=1",
    ]


def kube_router_rbac() -> list[dict[str, Any]]:
    """What kube-router's network-policy controller reads (its upstream ClusterRole, less the
    router's and proxy's needs), bound to its client certificate's user."""
    rules = [
        {"apiGroups": [""], "resources": ["namespaces", "nodes", "pods", "services", "endpoints"], "verbs": ["get", "list", "watch"]},
        {"apiGroups": ["networking.k8s.io"], "resources": ["networkpolicies"], "verbs": ["get", "list", "watch"]},
        {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": ["get", "list", "watch"]},
    ]
    meta = {"name": "kubellm-test:kube-router"}
    ref = {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": meta["name"]}
    subject = {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": POLICY_ENGINE_USER}
    return [
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": meta, "rules": rules},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": meta, "roleRef": ref, "subjects": [subject]},
    ]
