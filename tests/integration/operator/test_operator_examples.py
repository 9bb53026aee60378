"""Every example from examples/ applied as an LLMService on the real control plane: the
operator reconciles it, the real scheduler places its pods on kwok GPU nodes, the status
reaches Available (or Degraded, with a reason, where the cluster lacks an API the example
needs). Only kubelets are simulated (kwok); no GPU exists here."""

from __future__ import annotations

import base64
import re
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from kubellm.operator.testing import ControlPlane, OperatorProcess, kubellm, wait_for

pytestmark = pytest.mark.controlplane

EXAMPLES = sorted((Path(__file__).resolve().parents[3] / "examples").glob("*.yaml"))
# These need an API this cluster does not serve (and no test cluster can run its controller):
# the operator must say so instead of pretending.
NEEDS_MISSING_API = {"canary-argo": "MissingApi", "llama-70b-multinode": "MissingApi"}
GPU = "nvidia.com/gpu"


def _ns_for(example: Path) -> str:
    return "ex-" + re.sub(r"[^a-z0-9-]", "-", example.stem.lower())[:40]


def _status(client: httpx.Client, ns: str, name: str) -> dict[str, Any]:
    response = client.get(f"/apis/kubellm.dev/v1alpha1/namespaces/{ns}/llmservices/{name}")
    response.raise_for_status()
    return dict(response.json())


def _settled(client: httpx.Client, ns: str, name: str, phase: str) -> dict[str, Any] | None:
    obj = _status(client, ns, name)
    status = obj.get("status") or {}
    if status.get("phase") == phase and status.get("observedGeneration") == obj["metadata"]["generation"]:
        return obj
    return None


def _quantity(value: str) -> float:
    return float(value[:-1]) / 1000 if value.endswith("m") else float(value)


def is_gateway(obj: dict[str, Any]) -> bool:
    """The namespace's gateway (the operator deploys one beside the engines)."""
    return bool((obj["metadata"].get("labels") or {}).get("app.kubernetes.io/name") == "kubellm-gateway")


def _create_api_key_secret(client: httpx.Client, example: Path, ns: str) -> None:
    """The Secret an example's spec.security.apiKeys names, as its user would create it
    (without it the service is Degraded: ApiKeySecretMissing)."""
    api_keys = ((yaml.safe_load(example.read_text())["spec"].get("security") or {}).get("apiKeys") or {})
    ref = api_keys.get("secretRef")
    if ref:
        data = {ref.get("key", "token"): base64.b64encode(b"team-a:example-key\n").decode()}
        secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": ref["name"]}, "data": data}
        client.post(f"/api/v1/namespaces/{ns}/secrets", json=secret).raise_for_status()


def _check_placement(client: httpx.Client, namespaces: list[str]) -> int:
    """Every scheduled pod sits on a node that matches its nodeSelector, whose taints it
    tolerates, and whose GPUs are not oversubscribed. Returns how many engine pods (not loader
    Job pods) were checked."""
    nodes = {n["metadata"]["name"]: n for n in client.get("/api/v1/nodes").json()["items"]}
    used: dict[str, float] = defaultdict(float)
    checked = 0
    for ns in namespaces:
        for pod in client.get(f"/api/v1/namespaces/{ns}/pods").json()["items"]:
            node_name = pod["spec"].get("nodeName")
            if not node_name:
                continue
            node = nodes[node_name]
            pod_labels = pod["metadata"].get("labels", {})
            checked += "job-name" not in pod_labels and not is_gateway(pod)
            labels = node["metadata"].get("labels", {})
            for key, value in (pod["spec"].get("nodeSelector") or {}).items():
                assert labels.get(key) == value, f"{ns}/{pod['metadata']['name']} on {node_name} lacks {key}={value}"
            tolerated = {t.get("key") for t in pod["spec"].get("tolerations") or []}
            for taint in node["spec"].get("taints") or []:
                assert taint["key"] in tolerated, f"{pod['metadata']['name']} on {node_name} ignores taint {taint['key']}"
            for container in pod["spec"]["containers"]:
                used[node_name] += _quantity(((container.get("resources") or {}).get("requests") or {}).get(GPU, "0"))
    for node_name, gpus in used.items():
        allocatable = _quantity(nodes[node_name]["status"]["allocatable"].get(GPU, "0"))
        assert gpus <= allocatable, f"{node_name}: {gpus} GPUs requested, {allocatable} allocatable"
    return checked


@pytest.fixture
def example_namespaces(control_plane: ControlPlane) -> Iterator[list[str]]:
    """Namespaces made by a test, deleted after it (freeing the kwok nodes' GPUs)."""
    made: list[str] = []
    yield made
    with control_plane.http() as client:
        for ns in made:
            client.delete(f"/api/v1/namespaces/{ns}")


def test_every_example_is_reconciled_placed_and_reported(
    control_plane: ControlPlane, operator: OperatorProcess, example_namespaces: list[str]
) -> None:
    applied: list[tuple[Path, str, str]] = []
    with control_plane.http() as client:
        for example in EXAMPLES:
            ns = _ns_for(example)
            client.post("/api/v1/namespaces", json={"metadata": {"name": ns}})
            example_namespaces.append(ns)
            name = yaml.safe_load(example.read_text())["metadata"]["name"]
            _create_api_key_secret(client, example, ns)
            kubellm(control_plane, "apply", str(example), "--resource", "-n", ns)
            applied.append((example, ns, name))
        for example, ns, name in applied:
            phase = "Degraded" if example.stem in NEEDS_MISSING_API else "Available"
            obj = wait_for(lambda: _settled(client, ns, name, phase), 90, f"{example.stem} {phase}\n{operator.tail()}")
            status = obj["status"]
            conditions = {c["type"]: c for c in status["conditions"]}
            if phase == "Degraded":
                assert conditions["Degraded"]["reason"] == NEEDS_MISSING_API[example.stem]
                assert "not served" in conditions["Degraded"]["message"]
                continue
            assert conditions["Available"]["status"] == "True"
            assert conditions["CacheReady"]["status"] == "True"
            assert conditions["Degraded"]["status"] == "False"
            assert status["serviceUrl"].startswith(f"http://") and f".{ns}.svc:" in status["serviceUrl"]
            assert status["roles"] and all(r["ready"] == r["desired"] >= 1 for r in status["roles"].values())
        placed = _check_placement(client, [ns for _, ns, _ in applied])
        _check_image_volume(client, _ns_for(next(e for e in EXAMPLES if e.stem == "oci-image-volume")))
    assert placed >= 10  # the engine pods of eight examples (some with several replicas)


def _check_image_volume(client: httpx.Client, ns: str) -> None:
    """The engine pod of `cache.kind: image` really mounts the model image (the server drops
    image volumes unless the ImageVolume feature gate is on)."""
    pods = [p for p in client.get(f"/api/v1/namespaces/{ns}/pods").json()["items"] if not is_gateway(p)]
    assert pods, f"no pods in {ns}"
    for pod in pods:
        images = [v for v in pod["spec"].get("volumes") or [] if "image" in v]
        assert images and images[0]["image"]["reference"], f"{pod['metadata']['name']} has no image volume"
        mounted = {m["name"] for c in pod["spec"]["containers"] for m in c.get("volumeMounts") or []}
        assert images[0]["name"] in mounted


def test_engines_start_only_after_the_loader_job_completed(
    control_plane: ControlPlane, operator: OperatorProcess, example_namespaces: list[str]
) -> None:
    example = next(e for e in EXAMPLES if e.stem == "mistral-7b-l4-gcs")
    ns, name = _ns_for(example) + "-order", yaml.safe_load(example.read_text())["metadata"]["name"]
    with control_plane.http() as client:
        client.post("/api/v1/namespaces", json={"metadata": {"name": ns}})
        example_namespaces.append(ns)
        kubellm(control_plane, "apply", str(example), "--resource", "-n", ns)
        wait_for(lambda: _settled(client, ns, name, "Available"), 90, f"{name} Available\n{operator.tail()}")
        jobs = client.get(f"/apis/batch/v1/namespaces/{ns}/jobs").json()["items"]
        deployments = [d for d in client.get(f"/apis/apps/v1/namespaces/{ns}/deployments").json()["items"]
                       if not is_gateway(d)]  # the namespace's gateway needs no cache
    assert len(jobs) == 1 and deployments
    completed = jobs[0]["status"]["completionTime"]
    for deployment in deployments:
        assert deployment["metadata"]["creationTimestamp"] >= completed
        owner = deployment["metadata"]["ownerReferences"][0]
        assert owner["kind"] == "LLMService" and owner["name"] == name and owner["controller"] is True
        managers = {m["manager"] for m in deployment["metadata"]["managedFields"] if m["operation"] == "Apply"}
        assert managers == {"kubellm-operator"}
