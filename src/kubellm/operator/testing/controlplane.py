"""A real Kubernetes control plane on loopback: etcd, kube-apiserver, kube-controller-manager,
kube-scheduler and kwok (simulated kubelets), each a child process with its log in the work
directory. Certificates are generated per run; every port is a free one found at start.

    with ControlPlane.start(workdir) as cp:
        cp.add_nodes("gpu-a", 4, GpuNodeSpec(gpus=8, product="NVIDIA-L4"))
        ... cp.kubeconfig ...

Errors: ``ControlPlaneError`` (a binary is missing, a component exited or never got ready;
the message names the log to read).
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import signal
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import httpx
import yaml

from kubellm.operator.testing.nodes import GpuNodeSpec, gpu_node
from kubellm.operator.testing.pki import KeyPair, Pki

BINARIES = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")
STAGES_FILE = Path(__file__).with_name("kwok-stages.yaml")
SERVICE_CIDR = "10.0.0.0/24"
# The client certificate the API server proxies to aggregated API servers with.
FRONT_PROXY_CLIENT = "front-proxy-client"


class ControlPlaneError(RuntimeError):
    """The control plane cannot start or a component died."""


def find_binaries(search: Sequence[Path] | None = None) -> dict[str, Path]:
    """Locate the control-plane binaries (``.tools/bin`` of the checkout first, then PATH)."""
    root = Path(__file__).resolve().parents[4]
    dirs = list(search) if search is not None else [root / ".tools" / "bin"]
    found: dict[str, Path] = {}
    missing: list[str] = []
    for name in BINARIES:
        candidates = [d / name for d in dirs if (d / name).is_file()]
        which = shutil.which(name)
        path = candidates[0] if candidates else (Path(which) if which else None)
        if path is None:
            missing.append(name)
        else:
            found[name] = path
    if missing:
        raise ControlPlaneError(
            f"control-plane binaries missing: {', '.join(missing)}; build them with scripts/controlplane/build.sh"
        )
    return found


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@dataclass
class _Process:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path
    handle: IO[bytes]

    def check_alive(self) -> None:
        if self.popen.poll() is not None:
            tail = self.log.read_text(errors="replace")[-3000:]
            raise ControlPlaneError(f"{self.name} exited with {self.popen.returncode}; log {self.log}:\n{tail}")

    def stop(self, timeout: float = 10.0) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        self.handle.close()


def _kubeconfig(server: str, ca: Path, client: KeyPair, user: str) -> dict[str, object]:
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "kubellm-test", "cluster": {"server": server, "certificate-authority": str(ca)}}],
        "users": [{"name": user, "user": {"client-certificate": str(client.cert), "client-key": str(client.key)}}],
        "contexts": [{"name": "kubellm-test", "context": {"cluster": "kubellm-test", "user": user}}],
        "current-context": "kubellm-test",
    }


@dataclass
class ControlPlane:
    """A running control plane. ``kubeconfig`` authenticates as a cluster admin."""

    workdir: Path
    binaries: dict[str, Path]
    audit_users: tuple[str, ...] = ()
    """Users whose requests the API server writes to ``audit.log`` (one JSON line each)."""
    bind_address: str = "127.0.0.1"
    """Where the API server listens: loopback, or the host side of a real node's veth."""
    service_cidr: str = SERVICE_CIDR
    apiserver_args: tuple[str, ...] = ()
    kwok_stages: Path = STAGES_FILE
    server: str = ""
    port: int = 0
    kubeconfig: Path = Path()
    timings: dict[str, float] = field(default_factory=dict)
    _processes: list[_Process] = field(default_factory=list)
    _pki: Pki | None = None

    # -- lifecycle -------------------------------------------------------------------------
    @classmethod
    @contextmanager
    def start(
        cls, workdir: Path, *, binaries: dict[str, Path] | None = None, audit_users: tuple[str, ...] = (),
        bind_address: str = "127.0.0.1", service_cidr: str = SERVICE_CIDR, apiserver_args: tuple[str, ...] = (),
        kwok_stages: Path = STAGES_FILE, port: int = 0,
    ) -> Iterator[ControlPlane]:
        """*port*: the API server's (0: a free one; a real node's policy tests ask for 6443)."""
        plane = cls(
            workdir=workdir, binaries=binaries or find_binaries(), audit_users=audit_users,
            bind_address=bind_address, service_cidr=service_cidr, apiserver_args=apiserver_args, kwok_stages=kwok_stages,
            port=port,
        )
        try:
            plane._boot()
            yield plane
        finally:
            plane.stop()

    def stop(self) -> None:
        """Stop every component, newest first (kwok before the API server before etcd)."""
        for process in reversed(self._processes):
            process.stop()
        self._processes.clear()

    def _spawn(self, name: str, args: list[str]) -> _Process:
        log = self.workdir / f"{name}.log"
        handle = log.open("wb")
        popen = subprocess.Popen(
            [str(self.binaries[name]), *args],
            stdout=handle,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        process = _Process(name, popen, log, handle)
        self._processes.append(process)
        return process

    def _boot(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        began = time.monotonic()
        self._pki = Pki(self.workdir / "pki")
        etcd_url = self._start_etcd()
        self.timings["etcd"] = time.monotonic() - began
        self._start_apiserver(etcd_url)
        self.timings["kube-apiserver"] = time.monotonic() - began
        self._start_controllers()
        self._start_kwok()
        self._wait_for_default_service_account()
        self.timings["ready"] = time.monotonic() - began

    # -- components ------------------------------------------------------------------------
    def _start_etcd(self) -> str:
        client, peer = free_port(), free_port()
        url = f"http://127.0.0.1:{client}"
        process = self._spawn(
            "etcd",
            [
                "--name=default",
                f"--data-dir={self.workdir / 'etcd'}",
                f"--listen-client-urls={url}",
                f"--advertise-client-urls={url}",
                f"--listen-peer-urls=http://127.0.0.1:{peer}",
                f"--initial-advertise-peer-urls=http://127.0.0.1:{peer}",
                f"--initial-cluster=default=http://127.0.0.1:{peer}",
                "--unsafe-no-fsync",  # a throwaway test store: speed over durability
                "--log-level=warn",
            ],
        )
        self._wait(process, lambda: httpx.get(f"{url}/health", timeout=1).status_code == 200, 30)
        return url

    def _start_apiserver(self, etcd_url: str) -> None:
        assert self._pki is not None
        pki = self._pki
        serving = pki.issue("apiserver", "kube-apiserver", server=True, ips=(self.bind_address, _first_ip(self.service_cidr)))
        admin = pki.issue("admin", "kubellm-admin", organization="system:masters")
        kubelet_client = pki.issue("kubelet-client", "kube-apiserver-kubelet-client", organization="system:masters")
        front_proxy = pki.issue("front-proxy-client", FRONT_PROXY_CLIENT)
        sa = pki.service_account_keys()
        port = self.port or free_port(self.bind_address)
        self.port = port
        self.server = f"https://{self.bind_address}:{port}"
        process = self._spawn(
            "kube-apiserver",
            [
                f"--etcd-servers={etcd_url}",
                f"--bind-address={self.bind_address}",
                f"--advertise-address={self.bind_address}",
                f"--secure-port={port}",
                f"--tls-cert-file={serving.cert}",
                f"--tls-private-key-file={serving.key}",
                f"--client-ca-file={pki.ca.cert}",
                f"--service-account-key-file={sa.cert}",
                f"--service-account-signing-key-file={sa.key}",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                f"--service-cluster-ip-range={self.service_cidr}",
                # What the API server presents to kubelets (logs, exec); kwok ignores it.
                f"--kubelet-client-certificate={kubelet_client.cert}",
                f"--kubelet-client-key={kubelet_client.key}",
                "--authorization-mode=Node,RBAC",
                # The API server's own endpoints would be 127.0.0.1, which Endpoints reject.
                "--endpoint-reconciler-type=none",
                f"--cert-dir={self.workdir / 'apiserver-certs'}",
                "--profiling=false",
                # Beta and off by default in 1.34: without it the server silently drops image
                # volumes (cache.kind: image) and such a pod would run with no model.
                "--feature-gates=ImageVolume=true",
                *_aggregation_flags(pki.ca.cert, front_proxy),
                "--v=1",
                *self._audit_flags(),
                *self.apiserver_args,
            ],
        )
        self.kubeconfig = self._write_kubeconfig("admin.kubeconfig", admin, "kubellm-admin")
        self._wait(process, self._apiserver_ready, 90)

    def _audit_flags(self) -> list[str]:
        if not self.audit_users:
            return []
        policy = {
            "apiVersion": "audit.k8s.io/v1",
            "kind": "Policy",
            "omitStages": ["RequestReceived"],
            "rules": [{"level": "Metadata", "users": list(self.audit_users)}, {"level": "None"}],
        }
        path = self.workdir / "audit-policy.yaml"
        path.write_text(yaml.safe_dump(policy))
        return [f"--audit-policy-file={path}", f"--audit-log-path={self.audit_log}", "--audit-log-mode=batch"]

    @property
    def audit_log(self) -> Path:
        return self.workdir / "audit.log"

    def service_account_kubeconfig(self, namespace: str, name: str, seconds: int = 7200) -> Path:
        """A kubeconfig that authenticates as a ServiceAccount (a TokenRequest token), to run a
        component with exactly the RBAC it would have in a cluster."""
        assert self._pki is not None
        request = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {"expirationSeconds": seconds}}
        with self.http() as client:
            response = client.post(f"/api/v1/namespaces/{namespace}/serviceaccounts/{name}/token", json=request)
            response.raise_for_status()
        token = response.json()["status"]["token"]
        config = _kubeconfig(self.server, self._pki.ca.cert, KeyPair(Path(), Path()), name)
        config["users"] = [{"name": name, "user": {"token": token}}]
        path = self.workdir / f"sa-{namespace}-{name}.kubeconfig"
        path.write_text(yaml.safe_dump(config))
        path.chmod(0o600)
        return path

    def _apiserver_ready(self) -> bool:
        assert self._pki is not None
        admin = KeyPair(self._pki.directory / "admin.crt", self._pki.directory / "admin.key")
        with httpx.Client(verify=_tls(self._pki.ca.cert, admin), timeout=2) as client:
            return client.get(f"{self.server}/readyz").status_code == 200

    def _write_kubeconfig(self, filename: str, client: KeyPair, user: str) -> Path:
        assert self._pki is not None
        path = self.workdir / filename
        path.write_text(yaml.safe_dump(_kubeconfig(self.server, self._pki.ca.cert, client, user)))
        path.chmod(0o600)
        return path

    def _component_kubeconfig(self, name: str, user: str, organization: str | None = None) -> Path:
        assert self._pki is not None
        pair = self._pki.issue(name, user, organization=organization)
        return self._write_kubeconfig(f"{name}.kubeconfig", pair, user)

    def component_kubeconfig(self, name: str, user: str, organization: str | None = None) -> Path:
        """A kubeconfig with a client certificate for *user* (a kubelet: ``system:node:NAME``
        in ``system:nodes``; kube-proxy: ``system:kube-proxy``)."""
        return self._component_kubeconfig(name, user, organization)

    def serving_cert(self, name: str, ips: tuple[str, ...], dns: tuple[str, ...] = (), *, client_too: bool = False) -> KeyPair:
        """A serving certificate from the cluster's CA for a server at *ips* and *dns* names (an
        aggregated API server: its APIService's caBundle is :attr:`ca_cert`); with *client_too*,
        also good as a client certificate (KEDA's metrics server and operator: mutual TLS)."""
        assert self._pki is not None
        return self._pki.issue(name, name, server=True, ips=ips, dns=dns, client_too=client_too)

    @property
    def ca_cert(self) -> Path:
        assert self._pki is not None
        return self._pki.ca.cert

    def _start_controllers(self) -> None:
        assert self._pki is not None
        cm = self._component_kubeconfig("controller-manager", "system:kube-controller-manager")
        self._spawn(
            "kube-controller-manager",
            [
                f"--kubeconfig={cm}",
                "--bind-address=127.0.0.1",
                "--secure-port=0",
                "--leader-elect=false",
                f"--service-account-private-key-file={self.workdir / 'pki' / 'sa.key'}",
                f"--root-ca-file={self._pki.ca.cert}",
                "--use-service-account-credentials=true",  # per-controller identities, as kubeadm runs it
                "--controllers=*,-nodeipam,-cloud-node-lifecycle,-service-lb-controller,-node-route-controller",
                "--concurrent-gc-syncs=5",
                # 15 s by default: the real-node autoscaling tests (an HPA on the Prometheus
                # Adapter's metrics) would wait out three of them for each decision.
                "--horizontal-pod-autoscaler-sync-period=5s",
                "--v=1",
            ],
        )
        scheduler = self._component_kubeconfig("scheduler", "system:kube-scheduler")
        self._spawn(
            "kube-scheduler",
            [f"--kubeconfig={scheduler}", "--bind-address=127.0.0.1", "--secure-port=0", "--leader-elect=false", "--v=1"],
        )

    def _start_kwok(self) -> None:
        self._spawn(
            "kwok",
            [
                f"--kubeconfig={self.kubeconfig}",
                f"--config={self.kwok_stages}",
                "--manage-all-nodes=false",
                "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
                "--node-ip=127.0.0.1",
                f"--server-address=127.0.0.1:{free_port()}",
                "--cidr=10.244.0.1/16",
                "--node-lease-duration-seconds=40",
            ],
        )

    # -- helpers ---------------------------------------------------------------------------
    def _wait(self, process: _Process, ready: object, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            process.check_alive()
            try:
                if callable(ready) and ready():
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise ControlPlaneError(f"{process.name} not ready after {timeout:.0f}s; see {process.log}")

    def check_alive(self) -> None:
        """Raise if any component has exited."""
        for process in self._processes:
            process.check_alive()

    def http(self) -> httpx.Client:
        """An admin HTTP client for the API server (for checks that lightkube does not need)."""
        assert self._pki is not None
        d = self._pki.directory
        return httpx.Client(base_url=self.server, verify=_tls(d / "ca.crt", KeyPair(d / "admin.crt", d / "admin.key")), timeout=10)

    def _wait_for_default_service_account(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        with self.http() as client:
            while time.monotonic() < deadline:
                self.check_alive()
                if client.get("/api/v1/namespaces/default/serviceaccounts/default").status_code == 200:
                    return
                time.sleep(0.2)
        raise ControlPlaneError("the controller-manager never created the default ServiceAccount")

    def add_nodes(self, prefix: str, count: int, spec: GpuNodeSpec, *, wait: bool = True) -> list[str]:
        """Create *count* kwok nodes named ``prefix-<i>``; wait until they are Ready."""
        names = [f"{prefix}-{i}" for i in range(count)]
        with self.http() as client:
            for name in names:
                response = client.post("/api/v1/nodes", json=gpu_node(name, spec))
                if response.status_code not in (201, 409):
                    raise ControlPlaneError(f"creating node {name}: {response.status_code} {response.text}")
            if wait:
                self._wait_nodes_ready(client, set(names))
        return names

    def _wait_nodes_ready(self, client: httpx.Client, names: set[str], timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_alive()
            nodes = client.get("/api/v1/nodes", params={"labelSelector": "type=kwok"}).json()["items"]
            ready = {n["metadata"]["name"] for n in nodes if _is_ready(n)}
            if names <= ready:
                return
            time.sleep(0.3)
        raise ControlPlaneError(f"nodes not Ready after {timeout:.0f}s; see {self.workdir / 'kwok.log'}")

    def delete_nodes(self, names: Sequence[str]) -> None:
        with self.http() as client:
            for name in names:
                client.delete(f"/api/v1/nodes/{name}")

    def env(self, kubeconfig: Path | None = None) -> dict[str, str]:
        """Environment for a child process (the CLI, the operator) that talks to this plane."""
        return {**os.environ, "KUBECONFIG": str(kubeconfig or self.kubeconfig)}


def _aggregation_flags(ca: Path, front_proxy: KeyPair) -> list[str]:
    """What an aggregated API server (the Prometheus Adapter's custom.metrics.k8s.io) needs:
    the API server proxies to it with a client certificate and the user in request headers, as
    kubeadm sets it up (one CA here; the allowed name restricts who may assert a user). Routed
    to the APIService's endpoint, not its ClusterIP: the API server runs outside the node."""
    return [
        f"--requestheader-client-ca-file={ca}",
        f"--requestheader-allowed-names={FRONT_PROXY_CLIENT}",
        "--requestheader-username-headers=X-Remote-User",
        "--requestheader-group-headers=X-Remote-Group",
        "--requestheader-extra-headers-prefix=X-Remote-Extra-",
        f"--proxy-client-cert-file={front_proxy.cert}",
        f"--proxy-client-key-file={front_proxy.key}",
        "--enable-aggregator-routing=true",
    ]


def _first_ip(cidr: str) -> str:
    """The first host address of *cidr*: the ``kubernetes`` Service's ClusterIP."""
    return str(next(ipaddress.ip_network(cidr).hosts()))


def _tls(ca: Path, client: KeyPair) -> ssl.SSLContext:
    """TLS that trusts our CA and presents a client certificate (httpx 0.28 wants a context)."""
    context = ssl.create_default_context(cafile=str(ca))
    context.load_cert_chain(str(client.cert), str(client.key))
    return context


def _is_ready(node: dict[str, object]) -> bool:
    status = node.get("status")
    conditions = status.get("conditions", []) if isinstance(status, dict) else []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
