"""KEDA for the real-node tests: its operator and metrics server, built from its Go module by
scripts/setup/autoscale.sh, run as child processes on the host, its CRDs installed.

The operator reconciles kubellm's rendered ScaledObjects (an HPA on external metrics, and
scaling to and from zero itself) and serves the trigger values over gRPC; the metrics server
is ``external.metrics.k8s.io``, registered as :mod:`~kubellm.operator.testing.aggregated`
describes, and asks the operator over mutual TLS. Both run with the admin kubeconfig (a test
shortcut: in a cluster they run with KEDA's ServiceAccounts and RBAC); certificate rotation is
off, the harness issues their certificates from the cluster's CA.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import yaml

from kubellm.operator.testing.adapter import TOOLS, tool
from kubellm.operator.testing.aggregated import AggregatedApi, check_running, child
from kubellm.operator.testing.apiserver import install_crd
from kubellm.operator.testing.controlplane import ControlPlane, free_port
from kubellm.operator.testing.pki import KeyPair

EXTERNAL_METRICS = AggregatedApi("external.metrics.k8s.io", ("v1beta1",), "keda", "keda-metrics-apiserver")


class KedaError(RuntimeError):
    """KEDA is not built, or its CRDs are not where the setup script puts them."""


@dataclass(frozen=True)
class Keda:
    operator_log: Path
    metrics_log: Path


def crds(directory: Path) -> list[dict[str, object]]:
    """KEDA's CRDs, as the setup script copied them from its module (config/crd/bases)."""
    files = sorted(directory.glob("*.yaml"))
    if not files:
        raise KedaError(f"no KEDA CRDs in {directory}: run scripts/setup/autoscale.sh")
    return [doc for path in files for doc in yaml.safe_load_all(path.read_text()) if doc]


def crd_directory() -> Path:
    return TOOLS / "keda" / "crds"


def _cert_dir(directory: Path, pair: KeyPair, ca: Path) -> Path:
    """ca.crt, tls.crt and tls.key, the names KEDA reads from its --cert-dir."""
    directory.mkdir(parents=True, exist_ok=True)
    for source, name in ((ca, "ca.crt"), (pair.cert, "tls.crt"), (pair.key, "tls.key")):
        shutil.copyfile(source, directory / name)
    return directory


def _operator_argv(cert_dir: Path, grpc_port: int) -> list[str]:
    return [
        str(tool("keda-operator")), "--leader-elect=false", "--metrics-bind-address=0", "--health-probe-bind-address=0",
        f"--metrics-service-bind-address=127.0.0.1:{grpc_port}", f"--cert-dir={cert_dir}", "--enable-cert-rotation=false",
        "--enable-webhook-patching=false", "--enable-apiservice-patching=false", "--zap-log-level=info",
    ]


def _metrics_argv(plane: ControlPlane, cert_dir: Path, address: str, port: int, grpc_port: int) -> list[str]:
    kubeconfig = str(plane.kubeconfig)
    return [
        str(tool("keda-adapter")), f"--secure-port={port}", f"--bind-address={address}", f"--port={free_port()}",
        f"--tls-cert-file={cert_dir / 'tls.crt'}", f"--tls-private-key-file={cert_dir / 'tls.key'}", f"--cert-dir={cert_dir}",
        f"--metrics-service-address=127.0.0.1:{grpc_port}", f"--lister-kubeconfig={kubeconfig}",
        f"--authentication-kubeconfig={kubeconfig}", f"--authorization-kubeconfig={kubeconfig}",
    ]


@contextmanager
def run_keda(plane: ControlPlane, workdir: Path, *, address: str) -> Iterator[Keda]:
    """KEDA's CRDs, operator and metrics server; the metrics server unregistered and both
    stopped on exit."""
    workdir.mkdir(parents=True, exist_ok=True)
    with plane.http() as client:
        for crd in crds(crd_directory()):
            install_crd(client, dict(crd))
    port, grpc_port = free_port(address), free_port()
    operator_certs = _cert_dir(workdir / "operator-certs", plane.serving_cert("keda-operator", ("127.0.0.1",), client_too=True),
                               plane.ca_cert)
    metrics_certs = _cert_dir(
        workdir / "metrics-certs",
        plane.serving_cert("keda-metrics-apiserver", (address, "127.0.0.1"), (EXTERNAL_METRICS.dns_name,), client_too=True),
        plane.ca_cert,
    )
    env = {**os.environ, "KUBECONFIG": str(plane.kubeconfig), "KEDA_CLUSTER_OBJECT_NAMESPACE": EXTERNAL_METRICS.namespace,
           "WATCH_NAMESPACE": ""}
    operator_log, metrics_log = workdir / "keda-operator.log", workdir / "keda-metrics-apiserver.log"
    with ExitStack() as stack:
        EXTERNAL_METRICS.register(plane, address, port)  # also makes the namespace the operator reads
        stack.callback(EXTERNAL_METRICS.unregister, plane)
        operator = stack.enter_context(child(_operator_argv(operator_certs, grpc_port), operator_log, env))
        metrics = stack.enter_context(child(_metrics_argv(plane, metrics_certs, address, port, grpc_port), metrics_log, env))
        EXTERNAL_METRICS.wait_available(plane, metrics, metrics_log)
        check_running(operator, operator_log)
        yield Keda(operator_log, metrics_log)
