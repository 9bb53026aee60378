"""Aggregated API servers run on the host for the real-node tests (the Prometheus Adapter's
``custom.metrics.k8s.io``, KEDA's ``external.metrics.k8s.io``): their APIServices, the
selectorless Service and the one endpoint the API server routes to, and child processes.

The API server reaches such a server through its APIService's Service, which has no selector
and one endpoint, the host side of the node's veth (the API server routes to endpoints:
``--enable-aggregator-routing``). It checks the server's certificate against the Service's name
(``NAME.NAMESPACE.svc``) and the APIService's caBundle, the cluster's CA.
"""

from __future__ import annotations

import base64
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from kubellm.operator.testing.controlplane import ControlPlane

APISERVICES = "/apis/apiregistration.k8s.io/v1/apiservices"


class AggregatedApiError(RuntimeError):
    """An aggregated API server did not start, or the API server never served its API."""


@dataclass(frozen=True)
class AggregatedApi:
    group: str
    versions: tuple[str, ...]
    namespace: str
    service: str

    @property
    def dns_name(self) -> str:
        """The name the API server checks the server's certificate against."""
        return f"{self.service}.{self.namespace}.svc"

    def apiservice(self, version: str, ca: Path, port: int) -> dict[str, Any]:
        return {
            "apiVersion": "apiregistration.k8s.io/v1",
            "kind": "APIService",
            "metadata": {"name": f"{version}.{self.group}"},
            "spec": {
                "group": self.group, "version": version, "groupPriorityMinimum": 100,
                "versionPriority": 100 + self.versions.index(version),
                "service": {"namespace": self.namespace, "name": self.service, "port": port},
                "caBundle": base64.b64encode(ca.read_bytes()).decode(),
            },
        }

    def service_objects(self, address: str, port: int) -> list[tuple[str, dict[str, Any]]]:
        """A selectorless Service and its one endpoint (the server on the host): (path, body)."""
        service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": self.service},
                   "spec": {"ports": [{"name": "https", "port": port, "targetPort": port}]}}
        slice_ = {
            "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": self.service, "labels": {"kubernetes.io/service-name": self.service}},
            "addressType": "IPv4", "endpoints": [{"addresses": [address]}],
            "ports": [{"name": "https", "port": port, "protocol": "TCP"}],
        }
        return [
            ("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": self.namespace}}),
            (f"/api/v1/namespaces/{self.namespace}/services", service),
            (f"/apis/discovery.k8s.io/v1/namespaces/{self.namespace}/endpointslices", slice_),
        ]

    def register(self, plane: ControlPlane, address: str, port: int) -> None:
        with plane.http() as client:
            for path, body in self.service_objects(address, port):
                _created(client.post(path, json=body))
            for version in self.versions:
                _created(client.post(APISERVICES, json=self.apiservice(version, plane.ca_cert, port)))

    def unregister(self, plane: ControlPlane) -> None:
        with plane.http() as client:
            for version in self.versions:
                client.delete(f"{APISERVICES}/{version}.{self.group}")

    def wait_available(self, plane: ControlPlane, process: subprocess.Popen[bytes], log: Path, timeout: float = 90) -> None:
        """Until every APIService is Available and a discovery request through the API server
        gets the server's answer."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            check_running(process, log)
            if all(self._available(plane, version) for version in self.versions):
                return
            time.sleep(0.5)
        raise AggregatedApiError(f"the API server never reached {self.group} after {timeout:.0f}s; see {log}")

    def _available(self, plane: ControlPlane, version: str) -> bool:
        with plane.http() as client:
            response = client.get(f"{APISERVICES}/{version}.{self.group}")
            conditions = response.json().get("status", {}).get("conditions", []) if response.status_code == 200 else []
            served = client.get(f"/apis/{self.group}/{version}").status_code == 200
        return served and any(c["type"] == "Available" and c["status"] == "True" for c in conditions)


def _created(response: httpx.Response) -> None:
    if response.status_code not in (201, 409):
        raise AggregatedApiError(f"{response.request.method} {response.request.url.path}: {response.status_code} {response.text}")


def check_running(process: subprocess.Popen[bytes], log: Path) -> None:
    if process.poll() is not None:
        raise AggregatedApiError(f"{log.stem} exited with {process.returncode}:\n{log.read_text(errors='replace')[-3000:]}")


@contextmanager
def child(argv: Sequence[str], log: Path, env: dict[str, str] | None = None) -> Iterator[subprocess.Popen[bytes]]:
    """*argv* as a child process logging to *log*; stopped (SIGTERM, then SIGKILL) on exit."""
    with log.open("wb") as handle:
        process = subprocess.Popen(
            list(argv), stdout=handle, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True, env=env,
        )
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
