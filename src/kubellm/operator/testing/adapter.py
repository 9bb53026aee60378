"""The Prometheus Adapter for the real-node tests: ``custom.metrics.k8s.io`` served from
kubellm's rendered rules, registered with the API server as an aggregated API.

The adapter (built from its Go module by scripts/setup/autoscale.sh) runs as a child process
on the host, listening on the host side of the node's veth, registered as
:mod:`~kubellm.operator.testing.aggregated` describes. It authenticates the API server's
proxied requests and reads pods with the admin kubeconfig (a test shortcut: in a cluster it
runs with its own ServiceAccount and the RBAC the Prometheus Adapter chart grants).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from kubellm.operator.testing.aggregated import AggregatedApi, child
from kubellm.operator.testing.controlplane import ControlPlane

CUSTOM_METRICS = AggregatedApi("custom.metrics.k8s.io", ("v1beta1", "v1beta2"), "kube-system", "prometheus-adapter")


class AdapterError(RuntimeError):
    """The adapter is missing or has no rules to serve."""


@dataclass(frozen=True)
class Adapter:
    log: Path

    @staticmethod
    def metric_path(namespace: str, metric: str, pods: str = "*") -> str:
        """Where the API server serves *metric* of *pods* in *namespace*."""
        return f"/apis/{CUSTOM_METRICS.group}/{CUSTOM_METRICS.versions[0]}/namespaces/{namespace}/pods/{pods}/{metric}"


def rules_from_configmaps(configmaps: list[dict[str, Any]]) -> dict[str, Any]:
    """One adapter config from kubellm's rendered ``*-prometheus-adapter-rules`` ConfigMaps."""
    rules: list[Any] = []
    for configmap in configmaps:
        rules.extend(yaml.safe_load(configmap["data"]["rules.yaml"])["rules"])
    if not rules:
        raise AdapterError("no Prometheus Adapter rules: is the service's scaling.backend hpa?")
    return {"rules": rules}


TOOLS = Path(__file__).resolve().parents[4] / ".tools"


def tool(name: str) -> Path:
    """A binary scripts/setup/autoscale.sh built into .tools/bin (or one on PATH), looked up
    as find_binaries looks up the control plane's."""
    built = TOOLS / "bin" / name
    found = built if built.is_file() else shutil.which(name)
    if found is None:
        raise AdapterError(f"{name} not built: run scripts/setup/autoscale.sh")
    return Path(found)


def _args(plane: ControlPlane, workdir: Path, address: str, port: int, prometheus_url: str, relist_seconds: int) -> list[str]:
    serving = plane.serving_cert("prometheus-adapter", (address,), (CUSTOM_METRICS.dns_name,))
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
    argv = [str(tool("prometheus-adapter")), *_args(plane, workdir, address, port, prometheus_url, relist_seconds)]
    with child(argv, log) as process:
        try:
            CUSTOM_METRICS.register(plane, address, port)
            CUSTOM_METRICS.wait_available(plane, process, log)
            yield Adapter(log)
        finally:
            CUSTOM_METRICS.unregister(plane)
