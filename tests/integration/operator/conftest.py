"""Fixtures for the operator's integration tests: a real control plane (etcd, kube-apiserver,
kube-controller-manager, kube-scheduler, kwok) on loopback, shared by the session, with
kwok GPU node pools; the LLMService CRD; an operator subprocess.

Only the kubelets are simulated (kwok): GPUs cannot exist here. Everything else is the
upstream Kubernetes code built by scripts/controlplane/build.sh. Missing binaries fail the
tests (never skip them): run that script first.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from kubellm.operator.testing import ControlPlane, ControlPlaneError, GpuNodeSpec, find_binaries
from kubellm.operator.testing.harness import OperatorProcess, fresh_namespace, kubellm

# Node pools: what the examples ask for, plus decoys that must never receive their pods.
POOLS: dict[str, tuple[int, GpuNodeSpec]] = {
    "l4": (6, GpuNodeSpec(gpus=2, product="NVIDIA-L4", labels={"cloud.google.com/gke-accelerator": "nvidia-l4"})),
    "h100": (1, GpuNodeSpec(gpus=8, product="NVIDIA-H100-80GB-HBM3", cpu="96", memory="1Ti")),
    "a10g": (1, GpuNodeSpec(gpus=4, product="NVIDIA-A10G")),
    "a100": (2, GpuNodeSpec(gpus=8, product="NVIDIA-A100-SXM4-80GB", cpu="128", memory="1Ti")),
    "cpu": (1, GpuNodeSpec(gpus=0, labels={"node.kubernetes.io/instance-type": "c3-standard-8"})),
    # Decoys: plenty of GPUs but the wrong product; the right product but one GPU only.
    "decoy-t4": (1, GpuNodeSpec(gpus=8, product="Tesla-T4", labels={"cloud.google.com/gke-accelerator": "nvidia-tesla-t4"})),
    "decoy-a10g-small": (1, GpuNodeSpec(gpus=1, product="NVIDIA-A10G")),
}


OPERATOR_NAMESPACE = "kubellm-system"
PRIORITY_CLASS = {"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass", "metadata": {"name": "llm-serving"}, "value": 1000}


@pytest.fixture(scope="session")
def control_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    try:
        binaries = find_binaries()
    except ControlPlaneError as exc:
        pytest.fail(str(exc), pytrace=False)
    workdir = tmp_path_factory.mktemp("controlplane")
    with ControlPlane.start(workdir, binaries=binaries) as plane:
        for prefix, (count, spec) in POOLS.items():
            plane.add_nodes(prefix, count, spec, wait=False)
        plane.add_nodes("l4", POOLS["l4"][0], POOLS["l4"][1], wait=True)
        with plane.http() as client:  # a cluster prerequisite of examples/llama-13b-tp2-tls.yaml
            client.post("/apis/scheduling.k8s.io/v1/priorityclasses", json=PRIORITY_CLASS).raise_for_status()
        # The CRD, RBAC and ServiceAccount as `kubellm install` makes them; the operator runs
        # here as a local process (replicas 0: kwok pods would not run it anyway).
        kubellm(plane, "install", "--replicas=0", f"--namespace={OPERATOR_NAMESPACE}")
        yield plane


@pytest.fixture(scope="session")
def operator_kubeconfig(control_plane: ControlPlane) -> Path:
    """Credentials of the operator's ServiceAccount: tests run it with exactly its RBAC."""
    return control_plane.service_account_kubeconfig(OPERATOR_NAMESPACE, "kubellm-operator")


@pytest.fixture(scope="module")
def operator(
    control_plane: ControlPlane, operator_kubeconfig: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorProcess]:
    log = tmp_path_factory.mktemp("operator") / "operator.log"
    proc = OperatorProcess(
        control_plane, log, "test-operator", kubeconfig=operator_kubeconfig, lease_namespace=OPERATOR_NAMESPACE
    ).start()
    yield proc
    proc.stop()


@pytest.fixture
def namespace(control_plane: ControlPlane) -> Iterator[str]:
    """A fresh namespace per test, deleted afterwards."""
    with fresh_namespace(control_plane, "t") as name:
        yield name
