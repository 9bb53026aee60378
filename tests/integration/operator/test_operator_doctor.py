"""`kubellm doctor` on real control planes: a bare one (no GPU node, no add-on CRD, no
storage class) and the shared one with kwok GPU pools, before and after the add-ons appear."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kubellm.operator.testing import ControlPlane, kubellm

pytestmark = pytest.mark.controlplane


def findings(plane: ControlPlane, *args: str, code: int = 0) -> dict[str, dict[str, Any]]:
    result = kubellm(plane, "doctor", "-o", "json", *args, check=False)
    assert result.returncode == code, result.stderr
    return {f["check"]: f for f in json.loads(result.stdout)}


@pytest.fixture(scope="module")
def bare_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    with ControlPlane.start(tmp_path_factory.mktemp("bare")) as plane:
        yield plane


def test_doctor_on_a_bare_cluster_says_what_is_missing(bare_plane: ControlPlane) -> None:
    found = findings(bare_plane)
    assert found["gpu-nodes"]["level"] == "warn" and "no node advertises nvidia.com/gpu" in found["gpu-nodes"]["message"]
    assert found["kubernetes-version"]["message"].startswith("Kubernetes 1.34")
    assert found["storage-class"]["level"] == "warn"
    for crd in ("llmservices.kubellm.dev", "scaledobjects.keda.sh", "leaderworkersets.leaderworkerset.x-k8s.io"):
        assert found[f"crd:{crd}"]["level"] == "warn"


def test_doctor_blocks_a_gpu_spec_on_a_cluster_without_gpus(bare_plane: ControlPlane) -> None:
    spec = Path(__file__).resolve().parents[3] / "examples" / "mistral-7b-l4-gcs.yaml"
    found = findings(bare_plane, "--spec", str(spec), code=3)
    assert found["spec-fit"]["level"] == "fail"


def _crd(plural: str, group: str, kind: str) -> dict[str, Any]:
    schema = {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}
    return {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{group}"},
        "spec": {"group": group, "scope": "Namespaced", "names": {"plural": plural, "kind": kind},
                 "versions": [{"name": "v1alpha1", "served": True, "storage": True, "schema": schema}]},
    }


def test_doctor_with_gpu_nodes_then_with_addons(control_plane: ControlPlane) -> None:
    found = findings(control_plane)
    gpus = found["gpu-nodes"]
    assert gpus["level"] == "ok"
    assert "NVIDIA-H100-80GB-HBM3: 1 node(s)" in gpus["message"] and "Tesla-T4: 1 node(s), 8/8 free" in gpus["message"]
    assert found["device-plugin"]["level"] == "warn"
    assert found["crd:llmservices.kubellm.dev"]["level"] == "ok"
    assert found["crd:scaledobjects.keda.sh"]["level"] == "warn"

    plugin = {
        "apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "nvidia-device-plugin-daemonset", "namespace": "kube-system"},
        "spec": {"selector": {"matchLabels": {"app": "dp"}}, "template": {"metadata": {"labels": {"app": "dp"}},
                 "spec": {"nodeSelector": {"none": "none"}, "containers": [{"name": "dp", "image": "nvcr.io/nvidia/k8s-device-plugin:v0.17.0"}]}}},
    }
    storage = {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "provisioner": "example.com/csi",
               "metadata": {"name": "fast", "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}}}
    keda = _crd("scaledobjects", "keda.sh", "ScaledObject")
    created = [("/apis/apps/v1/namespaces/kube-system/daemonsets", plugin), ("/apis/storage.k8s.io/v1/storageclasses", storage),
               ("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", keda)]
    with control_plane.http() as client:
        for path, body in created:
            client.post(path, json=body).raise_for_status()
        try:
            import time

            time.sleep(1)  # the CRD becomes Established
            found = findings(control_plane)
        finally:
            for path, body in created:
                client.delete(f"{path}/{body['metadata']['name']}")
    assert found["device-plugin"]["level"] == "ok" and "nvidia-device-plugin-daemonset" in found["device-plugin"]["message"]
    assert found["storage-class"] == {"check": "storage-class", "level": "ok", "message": "default StorageClass fast"}
    assert found["crd:scaledobjects.keda.sh"]["level"] == "ok"
