"""The Prometheus Adapter for the real-node tests: ``custom.metrics.k8s.io`` served from
kubellm's rendered rules, registered with the API server as an aggregated API.

The adapter (built from its Go module by scripts/setup/autoscale.sh) runs as a child process
on the host, listening on the host side of the node's veth. The API server reaches it through
an APIService whose Service has no selector and one endpoint, that address (the API server
routes to endpoints, ``--enable-aggregator-routing``); the adapter's serving certificate comes
from the cluster's CA, which is the APIService's caBundle. It authenticates the API server's
proxied requests and reads pods with the admin kubeconfig (a test shortcut: in a cluster it
runs with its own ServiceAccount and the RBAC the Prometheus Adapter chart grants).
"""

from __future__ import annotations

import base64
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from kubellm.operator.testing.controlplane import ControlPlane, find_binaries

GROUP = "custom.metrics.k8s.io"
VERSIONS = ("v1beta1", "v1beta2")
NAMESPACE = "kube-system"
SERVICE = "prometheus-adapter"
APISERVICES = "/apis/apiregistration.k8s.io/v1/apiservices"


class AdapterError(RuntimeError):
    """The adapter is missing, did not start, or the API server never served its metrics."""


@dataclass(frozen=True)
class Adapter:
    log: Path

    @staticmethod
    def metric_path(namespace: str, metric: str, pods: str = "*") -> str:
        """Where the API server serves *metric* of *pods* in *namespace*."""
        return f"/apis/{GROUP}/{VERSIONS[0]}/namespaces/{namespace}/pods/{pods}/{metric}"


def rules_from_configmaps(configmaps: list[dict[str, Any]]) -> dict[str, Any]:
    """One adapter config from kubellm's rendered ``*-prometheus-adapter-rules`` ConfigMaps."""
    rules: list[Any] = []
    for configmap in configmaps:
        rules.extend(yaml.safe_load(configmap["data"]["rules.yaml"])["rules"])
    if not rules:
        raise AdapterError("no Prometheus Adapter rules: is the service's scaling.backend hpa?")
    return {"rules": rules}


def apiservice(version: str, ca: Path, port: int) -> dict[str, Any]:
    return {
        "apiVersion": "apiregistration.k8s.io/v1",
        "kind": "APIService",
        "metadata": {"name": f"{version}.{GROUP}"},
        "spec": {
            "group": GROUP, "version": version, "groupPriorityMinimum": 100, "versionPriority": 100 + VERSIONS.index(version),
            "service": {"namespace": NAMESPACE, "name": SERVICE, "port": port},
            "caBundle": base64.b64encode(ca.read_bytes()).decode(),
        },
    }


def service_objects(address: str, port: int) -> list[tuple[str, dict[str, Any]]]:
    """A selectorless Service and its one endpoint (the adapter on the host): (path, body)."""
    base = f"/api/v1/namespaces/{NAMESPACE}"
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": SERVICE},
               "spec": {"ports": [{"name": "https", "port": port, "targetPort": port}]}}
    slice_ = {
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": SERVICE, "labels": {"kubernetes.io/service-name": SERVICE}},
        "addressType": "IPv4", "endpoints": [{"addresses": [address]}],
        "ports": [{"name": "https", "port": port, "protocol": "TCP"}],
    }
    return [(f"{base}/services", service), (f"/apis/discovery.k8s.io/v1/namespaces/{NAMESPACE}/endpointslices", slice_)]


def binary() -> Path:
    found = shutil.which("prometheus-adapter") or str(find_binaries()["kube-apiserver"].with_name("prometheus-adapter"))
    if not Path(found).is_file():
        raise AdapterError("prometheus-adapter not built: run scripts/setup/autoscale.sh")
    return Path(found)


def _args(plane: ControlPlane, workdir: Path, address: str, port: int, prometheus_url: str, relist_seconds: int) -> list[str]:
    # The API server checks the name of the APIService's Service, even when it routes to the endpoint.
    serving = plane.serving_cert("prometheus-adapter", (address,), (f"{SERVICE}.{NAMESPACE}.svc",))
    return [
        f"--secure-port={port}", f"--bind-address={address}",
        f"--tls-cert-file={serving.cert}", f"--tls-private-key-file={serving.key}",
        f"--lister-kubeconfig={plane.kubeconfig}", f"--authentication-kubeconfig={plane.kubeconfig}",
        f"--authorization-kubeconfig={plane.kubeconfig}",
        f"--prometheus-url={prometheus_url}", f"--config={workdir / 'adapter-rules.yaml'}",
        # 10 minutes by default: a series that appears after start (a new engine) would be
        # unknown for that long.
        f"--metrics-relist-interval={relist_seconds}s", "--v=2",
    ]


@contextmanager
def run_adapter(
    plane: ControlPlane, workdir: Path, rules: dict[str, Any], *, address: str, port: int, prometheus_url: str,
    relist_seconds: int = 5,
) -> Iterator[Adapter]:
    """The adapter serving *rules*, registered for every version of custom.metrics.k8s.io;
    unregistered and stopped on exit."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "adapter-rules.yaml").write_text(yaml.safe_dump(rules))
    log = workdir / "prometheus-adapter.log"
    with log.open("wb") as handle:
        process = subprocess.Popen(
            [str(binary()), *_args(plane, workdir, address, port, prometheus_url, relist_seconds)],
            stdout=handle, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
        )
    try:
        _register(plane, address, port)
        _wait_available(plane, process, log)
        yield Adapter(log)
    finally:
        _unregister(plane)
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _register(plane: ControlPlane, address: str, port: int) -> None:
    with plane.http() as client:
        for path, body in service_objects(address, port):
            _created(client.post(path, json=body))
        for version in VERSIONS:
            _created(client.post(APISERVICES, json=apiservice(version, plane.ca_cert, port)))


def _unregister(plane: ControlPlane) -> None:
    with plane.http() as client:
        for version in VERSIONS:
            client.delete(f"{APISERVICES}/{version}.{GROUP}")


def _created(response: httpx.Response) -> None:
    if response.status_code not in (201, 409):
        raise AdapterError(f"{response.request.method} {response.request.url.path}: {response.status_code} {response.text}")


def _wait_available(plane: ControlPlane, process: subprocess.Popen[bytes], log: Path, timeout: float = 90) -> None:
    """Until the API server reports every APIService Available (it reached the adapter)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AdapterError(f"prometheus-adapter exited with {process.returncode}:\n{log.read_text(errors='replace')[-3000:]}")
        if all(_available(plane, version) for version in VERSIONS):
            return
        time.sleep(0.5)
    raise AdapterError(f"the API server never reached the adapter ({GROUP} not Available after {timeout:.0f}s); see {log}")


def _available(plane: ControlPlane, version: str) -> bool:
    """Reported Available, and a discovery request through the API server gets the adapter's answer."""
    with plane.http() as client:
        response = client.get(f"{APISERVICES}/{version}.{GROUP}")
        conditions = response.json().get("status", {}).get("conditions", []) if response.status_code == 200 else []
        served = client.get(f"/apis/{GROUP}/{version}").status_code == 200
    return served and any(c["type"] == "Available" and c["status"] == "True" for c in conditions)
