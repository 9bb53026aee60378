"""One real Kubernetes node beside the kwok nodes: containerd, a kubelet and kube-proxy
(iptables mode) in a network namespace of its own, joined to a ``ControlPlane`` whose API
server listens on the host side of the namespace's veth. Pods run for real (runc, a CNI
bridge, the locally built pause image); images come from OCI archives imported into
containerd, since no registry can be reached.

    with real_cluster(workdir, images=[archive]) as (plane, node):
        ... plane.kubeconfig ...; node.name; node.timings

One node per machine at a time (containerd 1.6, the kubelet and CNI use fixed host paths):
a start refuses with ``RealNodeBusy`` while another run holds the node or a killed run left
something in the way, and names the command that removes it:
``python -m kubellm.operator.testing.realnode clean``. docs/realnode.md has the picture.

Errors: ``RealNodeError`` (a binary or image is missing, a component exited or never got
ready; the message names the log to read), ``RealNodeBusy`` (a subclass: the host is not free).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import yaml

from kubellm.operator.testing import hoststate, netns, netpolicy
from kubellm.operator.testing.controlplane import STAGES_FILE, ControlPlane, _is_ready, _Process, find_binaries
from kubellm.operator.testing.nodeconfig import (
    APISERVER_POLICY_PORT,
    POLICY_ENGINE_USER,
    REAL_NODE_LABEL,
    REGISTRY,
    REGISTRY_PORT,
    NodeNetwork,
    NodePaths,
    cni_conflist,
    containerd_config,
    kube_proxy_config,
    kube_router_args,
    kube_router_rbac,
    kubelet_config,
    kubernetes_endpoint_slice,
    kwok_stages_without_volumes,
    local_storage_class,
    local_volume,
    registry_config,
)

NODE_BINARIES = ("kubelet", "kube-proxy")
HOST_TOOLS = {
    "containerd": "containerd", "ctr": "containerd", "runc": "runc", "nsenter": "util-linux", "iptables": "iptables",
    "docker-registry": "docker-registry", "skopeo": "skopeo",
}
ROOT = Path(__file__).resolve().parents[4]
NODE_IMAGES = ROOT / ".tools" / "node"
RECORD = Path("/run/kubellm-node.json")
"""Who holds the node: written at start, removed at the end; a lock and a guide for ``clean``."""
# Kernel settings the kubelet changes at start (it sets what it expects unless told to fail);
# machine-wide, not per namespace, so they are put back when the node stops.
KERNEL_TUNABLES = ("vm/overcommit_memory", "kernel/panic", "kernel/panic_on_oops")


class RealNodeError(RuntimeError):
    """The real node cannot start or one of its components died."""


class RealNodeBusy(RealNodeError):
    """Another run holds the node, or a killed run's leftovers are in the way."""


def check_host(network_policy: bool = False) -> dict[str, Path]:
    """The node's binaries (``.tools/bin``) and host tools; raise naming what to install."""
    missing = [f"{tool} (apt-get install {package})" for tool, package in HOST_TOOLS.items() if not _which(tool)]
    if network_policy:
        missing += netpolicy.missing(_which)
    if not Path("/usr/lib/cni/bridge").exists():
        missing.append("/usr/lib/cni/bridge (apt-get install containernetworking-plugins)")
    if missing:
        raise RealNodeError(f"the real node needs: {', '.join(missing)}; scripts/setup/node.sh installs them")
    if os.geteuid() != 0:
        raise RealNodeError("the real node needs root (network namespaces, mounts, cgroups)")
    binaries = {name: ROOT / ".tools" / "bin" / name for name in NODE_BINARIES}
    absent = [name for name, path in binaries.items() if not path.is_file()]
    if absent:
        raise RealNodeError(f"node binaries missing: {', '.join(absent)}; build them with scripts/controlplane/build.sh")
    return binaries


def _which(tool: str) -> bool:
    return any((Path(d) / tool).is_file() for d in (*os.environ.get("PATH", "").split(":"), "/usr/sbin", "/sbin"))


def check_free(network: NodeNetwork) -> None:
    """Raise ``RealNodeBusy`` if a run holds the node or left anything in the way."""
    if RECORD.exists():
        holder = _read_record()
        if holder.pid and Path(f"/proc/{holder.pid}").exists():
            raise RealNodeBusy(f"the real node is in use by process {holder.pid} (state in {holder.state}); only one can run on a machine")
    found = ([str(RECORD)] if RECORD.exists() else []) + hoststate.leftovers() + netns.leftovers(network)
    if found:
        raise RealNodeBusy(
            "leftovers of a real node that was killed are in the way: " + "; ".join(found)
            + f". Remove them with: {sys.executable} -m kubellm.operator.testing.realnode clean"
        )


@dataclass(frozen=True)
class _Record:
    """The content of ``RECORD``: who holds the node, where its state is, what to put back."""

    pid: int = 0
    state: str = ""
    tunables: tuple[tuple[str, str], ...] = ()

    def dump(self) -> str:
        return json.dumps({"pid": self.pid, "state": self.state, "tunables": dict(self.tunables)})


def _read_record() -> _Record:
    try:
        raw = json.loads(RECORD.read_text())
        tunables = tuple((str(k), str(v)) for k, v in dict(raw.get("tunables", {})).items())
        return _Record(int(raw.get("pid", 0)), str(raw.get("state", "")), tunables)
    except (OSError, ValueError, TypeError, AttributeError):
        return _Record()


def clean(network: NodeNetwork = NodeNetwork()) -> list[Path]:
    """Remove everything a node (running or killed) left on the host. Returns stuck cgroups."""
    holder = _read_record()
    paths = NodePaths(Path(holder.state)) if holder.state else None
    # What ran in the node's namespace, then the control plane (its command lines name the
    # run's work directory); never a process ID from the record, which may have been reused.
    hoststate.kill(hoststate.pids_in_netns(netns.NETNS_DIR / network.netns))
    if paths is not None:
        hoststate.kill(hoststate.pids_naming(str(paths.state.parent)))
    stuck = hoststate.clean([paths.state] if paths else [], paths.containerd_socket if paths else None)
    netpolicy.cleanup(network)  # the policy engine's chains and sets, before their namespace goes
    netns.delete(network)
    _restore_tunables(holder.tunables)
    RECORD.unlink(missing_ok=True)
    return stuck


def _read_tunables() -> tuple[tuple[str, str], ...]:
    return tuple((name, (Path("/proc/sys") / name).read_text().strip()) for name in KERNEL_TUNABLES)


def _restore_tunables(saved: tuple[tuple[str, str], ...]) -> None:
    for name, value in saved:
        try:
            (Path("/proc/sys") / name).write_text(value)
        except OSError:
            pass  # read-only /proc/sys: then the kubelet could not have changed it either


@dataclass
class RealNode:
    """A running node. ``timings`` has seconds from the start of each step to its end."""

    plane: ControlPlane
    network: NodeNetwork
    paths: NodePaths
    binaries: dict[str, Path]
    name: str = "kubellm-node"
    network_policy: bool = False
    """Run the NetworkPolicy engine (kube-router's firewall; docs/realnode.md)."""
    timings: dict[str, float] = field(default_factory=dict)
    _processes: list[_Process] = field(default_factory=list)

    # -- lifecycle -------------------------------------------------------------------------
    def boot(self, images: Sequence[Path]) -> None:
        began = time.monotonic()
        self._write_configs()
        self._start_containerd()
        self._start_registry()
        self.timings["containerd"] = time.monotonic() - began
        self.import_images([NODE_IMAGES / "pause.oci.tar", *images])
        self._start_kubelet()
        self._start_kube_proxy()
        self._publish_apiserver_endpoint()
        self._wait_ready()
        if self.network_policy:  # after the node registered: kube-router reads its Node object
            self._start_policy_engine()
        self.timings["node-ready"] = time.monotonic() - began
        self._create_volumes()

    def stop(self) -> list[Path]:
        """Stop the node's processes and remove every trace of it. Returns stuck cgroups."""
        for process in reversed(self._processes):
            if process.name != "containerd":
                process.stop(timeout=5)
        # Containers and their shims first, then containerd: a shim outlives containerd.
        hoststate.kill(hoststate.cgroup_pids())
        hoststate.kill(hoststate.pids_naming(str(self.paths.containerd_socket)))
        hoststate.kill(p for p in hoststate.pids_in_netns(netns.NETNS_DIR / self.network.netns) if p not in self._pids("containerd"))
        for process in self._processes:
            if process.name == "containerd":
                process.stop(timeout=5)
        self._processes.clear()
        if self.network_policy:
            netpolicy.cleanup(self.network)
        stuck = hoststate.clean([self.paths.state], self.paths.containerd_socket)
        # Unpacked images and the registry's copies (~1 GB a run); the logs stay for reading.
        hoststate.remove_paths([self.paths.containerd_root, self.paths.registry_root])
        return stuck

    # -- components ------------------------------------------------------------------------
    def _spawn(self, name: str, argv: list[str]) -> _Process:
        log = self.paths.state / f"{name}.log"
        handle = log.open("wb")
        popen = subprocess.Popen(
            netns.in_netns(self.network, argv), stdout=handle, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
        )
        process = _Process(name, popen, log, handle)
        self._processes.append(process)
        return process

    def start_process(self, name: str, argv: list[str]) -> _Process:
        """Run a helper server (an S3 endpoint, say) in the node's network namespace: pods reach
        it at the node's address; it is stopped with the node."""
        return self._spawn(name, argv)

    def stop_process(self, name: str) -> None:
        """Stop one of the node's processes by its name (a test stopping the policy engine)."""
        for process in [p for p in self._processes if p.name == name]:
            process.stop(timeout=5)
            self._processes.remove(process)

    def _write_configs(self) -> None:
        p = self.paths
        for directory in (p.containerd_root, p.containerd_state, p.cni_conf_dir, p.cni_ipam_dir, p.kubelet_root, p.pod_logs):
            directory.mkdir(parents=True, exist_ok=True)
        p.containerd_config.write_text(containerd_config(p))
        (p.cni_conf_dir / "10-kubellm.conflist").write_text(cni_conflist(self.network, p))
        # Pods' resolv.conf: no name server (no traffic may leave); Services are used by address.
        p.resolv_conf.write_text("options ndots:1\n")

    def _start_containerd(self) -> None:
        process = self._spawn("containerd", ["containerd", f"--config={self.paths.containerd_config}"])
        self._wait(process, lambda: self._ctr("version").returncode == 0, 30)

    def _start_registry(self) -> None:
        self.paths.registry_config.write_text(yaml.safe_dump(registry_config(self.paths)))
        process = self._spawn("registry", ["docker-registry", "serve", str(self.paths.registry_config)])
        url = f"http://{self.network.node_ip}:{REGISTRY_PORT}/v2/"
        self._wait(process, lambda: _answers(url), 30)

    def push_image(self, archive: Path) -> str:
        """Copy an OCI archive into the node's registry; returns the reference pods use
        (``localhost:5000/NAME:TAG``). Rendered pods pull ``Always``: from here, that costs a
        manifest request on the node's loopback."""
        ref = image_ref(archive)
        if not archive.is_file():
            raise RealNodeError(f"image archive {archive} missing; build it with scripts/image/build.sh")
        began = time.monotonic()
        name = ref.rsplit("/", 1)[-1]
        target = f"docker://{self.network.node_ip}:{REGISTRY_PORT}/{name}"
        result = subprocess.run(
            ["skopeo", "copy", "--quiet", "--dest-tls-verify=false", f"oci-archive:{archive}", target], capture_output=True, text=True
        )
        if result.returncode != 0:
            raise RealNodeError(f"pushing {archive} to the node's registry failed: {result.stderr.strip()}")
        self.timings[f"push {name}"] = time.monotonic() - began
        return f"{REGISTRY}/{name}"

    def _ctr(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["ctr", f"--address={self.paths.containerd_socket}", "--namespace=k8s.io", *args], capture_output=True, text=True
        )

    def import_images(self, archives: Sequence[Path]) -> None:
        """Import OCI archives into the node's containerd under the names their ``.ref`` files
        give (beside each archive), as the kubelet will look them up."""
        for archive in archives:
            if not archive.is_file():
                raise RealNodeError(f"image archive {archive} missing; scripts/setup/node.sh (and scripts/image/build.sh) build them")
            began = time.monotonic()
            ref = image_ref(archive)
            result = self._ctr("images", "import", f"--base-name={_repository(ref)}", str(archive))
            if result.returncode != 0 or _normalise(ref) not in self._ctr("images", "list", "-q").stdout.split():
                raise RealNodeError(f"importing {archive} as {ref} failed: {result.stderr.strip() or result.stdout.strip()}")
            self.timings[f"import {ref}"] = time.monotonic() - began

    def _start_kubelet(self) -> None:
        p, plane = self.paths, self.plane
        ports = (10250, 10248)  # inside the node's own network namespace: nothing else binds there
        p.kubelet_config.write_text(yaml.safe_dump(kubelet_config(self.network, p, plane.ca_cert, ports)))
        hoststate.create_cgroups()
        kubeconfig = plane.component_kubeconfig(f"kubelet-{self.name}", f"system:node:{self.name}", "system:nodes")
        self._spawn("kubelet", [
            str(self.binaries["kubelet"]),
            f"--config={p.kubelet_config}",
            f"--kubeconfig={kubeconfig}",
            f"--root-dir={p.kubelet_root}",
            f"--cert-dir={p.state / 'kubelet-pki'}",
            f"--node-ip={self.network.node_ip}",
            f"--hostname-override={self.name}",
            f"--node-labels={REAL_NODE_LABEL}=true",
            "--v=1",
        ])

    def _start_kube_proxy(self) -> None:
        kubeconfig = self.plane.component_kubeconfig("kube-proxy", "system:kube-proxy")
        config = kube_proxy_config(self.network, self.name, kubeconfig, (10256, 10249))
        self.paths.kube_proxy_config.write_text(yaml.safe_dump(config))
        self._spawn("kube-proxy", [str(self.binaries["kube-proxy"]), f"--config={self.paths.kube_proxy_config}", "--v=1"])

    def _start_policy_engine(self) -> None:
        """kube-router's network-policy controller, with a client certificate whose user has
        only what it reads; ready once it has programmed its chains in the node's namespace."""
        began = time.monotonic()
        with self.plane.http() as client:
            for obj in kube_router_rbac():
                plural = "clusterroles" if obj["kind"] == "ClusterRole" else "clusterrolebindings"
                _created(client.post(f"/apis/rbac.authorization.k8s.io/v1/{plural}", json=obj))
        kubeconfig = self.plane.component_kubeconfig("kube-router", POLICY_ENGINE_USER)
        process = self._spawn("kube-router", [str(netpolicy.BINARY), *kube_router_args(self.network, self.name, kubeconfig)])
        self._wait(process, lambda: "iptables chain KUBE-ROUTER-FORWARD" in netpolicy.state(self.network), 60)
        self.timings["policy engine"] = time.monotonic() - began

    def _publish_apiserver_endpoint(self) -> None:
        with self.plane.http() as client:
            response = client.post(
                "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices", json=kubernetes_endpoint_slice(self.network, self.plane.port)
            )
            if response.status_code not in (201, 409):
                raise RealNodeError(f"publishing the API server's endpoint: {response.status_code} {response.text}")

    def _create_volumes(self, count: int = 8) -> None:
        """The default StorageClass and *count* local volumes on the node, one directory each
        (static volumes, not a provisioner: see docs/realnode.md)."""
        with self.plane.http() as client:
            _created(client.post("/apis/storage.k8s.io/v1/storageclasses", json=local_storage_class()))
            for i in range(count):
                directory = self.paths.state / "volumes" / f"pv-{i}"
                directory.mkdir(parents=True, exist_ok=True)
                _created(client.post("/api/v1/persistentvolumes", json=local_volume(f"{self.name}-pv-{i}", directory, self.name)))

    def _wait_ready(self, timeout: float = 60) -> None:
        def ready() -> bool:
            with self.plane.http() as client:
                response = client.get(f"/api/v1/nodes/{self.name}")
                return response.status_code == 200 and _is_ready(response.json())

        self._wait(next(p for p in self._processes if p.name == "kubelet"), ready, timeout)

    def _wait(self, process: _Process, ready: object, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for each in self._processes:
                _check_alive(each)
            if callable(ready) and ready():
                return
            time.sleep(0.2)
        raise RealNodeError(f"{process.name} not ready after {timeout:.0f}s; see {process.log}")

    def _pids(self, name: str) -> set[int]:
        return {p.popen.pid for p in self._processes if p.name == name}

    def check_alive(self) -> None:
        """Raise if a node component has exited."""
        for process in self._processes:
            _check_alive(process)

    def log(self, component: str) -> Path:
        return self.paths.state / f"{component}.log"


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def _created(response: httpx.Response) -> None:
    if response.status_code != 201:
        raise RealNodeError(f"{response.request.method} {response.request.url.path}: {response.status_code} {response.text}")


def _check_alive(process: _Process) -> None:
    if process.popen.poll() is not None:
        tail = process.log.read_text(errors="replace")[-3000:]
        raise RealNodeError(f"{process.name} exited with {process.popen.returncode}; log {process.log}:\n{tail}")


def image_ref(archive: Path) -> str:
    """The reference an OCI archive is imported as: its ``NAME.ref`` file, beside ``NAME.oci.tar``."""
    return archive.with_name(archive.name.replace(".oci.tar", ".ref")).read_text().strip()


def _repository(ref: str) -> str:
    """The repository of *ref* as containerd stores it (``kubellm`` → ``docker.io/library/kubellm``)."""
    return _normalise(ref).rsplit(":", 1)[0]


def _normalise(ref: str) -> str:
    first, _, rest = ref.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        return ref
    return f"docker.io/{ref}" if rest else f"docker.io/library/{ref}"


def apiserver_args() -> tuple[str, ...]:
    """API server flags a real node needs: reach the kubelet by its InternalIP (the node's
    name does not resolve)."""
    return ("--kubelet-preferred-address-types=InternalIP,Hostname",)


@contextmanager
def real_cluster(
    workdir: Path, images: Sequence[Path] = (), network: NodeNetwork = NodeNetwork(), audit_users: tuple[str, ...] = (),
    network_policy: bool = False,
) -> Iterator[tuple[ControlPlane, RealNode]]:
    """A control plane with one real node; everything the node made is removed on exit, even
    when the body raised. *network_policy*: NetworkPolicies are enforced (kube-router's
    firewall on the node; the API server on 6443, the port policies allow it by)."""
    binaries = check_host(network_policy)
    plane_binaries = find_binaries()
    check_free(network)
    workdir.mkdir(parents=True, exist_ok=True)
    stages = workdir / "kwok-stages.yaml"
    stages.write_text(kwok_stages_without_volumes(STAGES_FILE.read_text()))
    RECORD.write_text(_Record(os.getpid(), str(workdir / "node"), _read_tunables()).dump())
    with ExitStack() as stack:
        stack.callback(_release, network)
        netns.create(network)
        plane = stack.enter_context(
            ControlPlane.start(
                workdir / "plane", binaries=plane_binaries, audit_users=audit_users, bind_address=network.host_ip,
                service_cidr=network.service_cidr, apiserver_args=apiserver_args(), kwok_stages=stages,
                port=APISERVER_POLICY_PORT if network_policy else 0,
            )
        )
        node = RealNode(plane, network, NodePaths(workdir / "node"), binaries, network_policy=network_policy)
        stack.callback(node.stop)
        node.boot(images)
        yield plane, node


def _release(network: NodeNetwork) -> None:
    netns.delete(network)
    _restore_tunables(_read_record().tunables)
    RECORD.unlink(missing_ok=True)


def main(argv: Sequence[str]) -> int:
    if list(argv) != ["clean"]:
        print(f"usage: {sys.executable} -m kubellm.operator.testing.realnode clean", file=sys.stderr)
        return 2
    stuck = clean()
    left = hoststate.leftovers() + netns.leftovers(NodeNetwork())
    for item in [*map(str, stuck), *left]:
        print(f"still there: {item}", file=sys.stderr)
    return 1 if stuck or left else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
