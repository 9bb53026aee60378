"""An LLMService's life on the real control plane: update, model change, invalid objects,
delete. Through the CLI as a user types it; checked through the API server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from kubellm.operator.testing import ControlPlane, OperatorProcess, kubellm, wait_for

pytestmark = pytest.mark.controlplane

API = "/apis/kubellm.dev/v1alpha1"


def write_spec(path: Path, name: str, **spec: Any) -> Path:
    body = {"apiVersion": "kubellm.dev/v1alpha1", "kind": "LLMService", "metadata": {"name": name}, "spec": spec}
    path.write_text(yaml.safe_dump(body))
    return path


def service(client: httpx.Client, ns: str, name: str) -> dict[str, Any]:
    response = client.get(f"{API}/namespaces/{ns}/llmservices/{name}")
    response.raise_for_status()
    return dict(response.json())


def settled(client: httpx.Client, ns: str, name: str, phase: str = "Available") -> dict[str, Any] | None:
    """The object once its status describes the latest spec in *phase*; for Available, also
    fully rolled out (Progressing False: a new model may load while the old one serves)."""
    obj = service(client, ns, name)
    status = obj.get("status") or {}
    ok = status.get("phase") == phase and status.get("observedGeneration") == obj["metadata"]["generation"]
    if phase == "Available":
        ok = ok and any(c["type"] == "Progressing" and c["status"] == "False" for c in status.get("conditions", []))
    return obj if ok else None


def items(client: httpx.Client, path: str) -> list[dict[str, Any]]:
    return list(client.get(path).json()["items"])


def owned(client: httpx.Client, ns: str, name: str) -> list[str]:
    """Every object of the kinds we create that carries this service's label."""
    selector = {"labelSelector": f"kubellm.dev/service={name}"}
    paths = ["/api/v1/namespaces/{ns}/services", "/api/v1/namespaces/{ns}/configmaps", "/api/v1/namespaces/{ns}/serviceaccounts",
             "/api/v1/namespaces/{ns}/persistentvolumeclaims", "/apis/apps/v1/namespaces/{ns}/deployments",
             "/apis/batch/v1/namespaces/{ns}/jobs", "/apis/networking.k8s.io/v1/namespaces/{ns}/networkpolicies",
             "/apis/policy/v1/namespaces/{ns}/poddisruptionbudgets"]
    found = []
    for path in paths:
        for obj in client.get(path.format(ns=ns), params=selector).json()["items"]:
            found.append(f"{path.rsplit('/', 1)[-1]}/{obj['metadata']['name']}")
    return sorted(found)


def test_update_rolls_out_and_status_follows(control_plane: ControlPlane, operator: OperatorProcess, namespace: str, tmp_path: Path) -> None:
    spec = write_spec(tmp_path / "s.yaml", "chat", model={"uri": "sim://tiny-chat"}, engine={"kind": "sim"})
    kubellm(control_plane, "apply", str(spec), "--resource", "-n", namespace)
    with control_plane.http() as client:
        wait_for(lambda: settled(client, namespace, "chat"), 60, f"chat Available\n{operator.tail()}")
        write_spec(spec, "chat", model={"uri": "sim://tiny-chat"}, engine={"kind": "sim"}, scaling={"minReplicas": 3})
        kubellm(control_plane, "apply", str(spec), "--resource", "-n", namespace)
        obj = wait_for(lambda: settled(client, namespace, "chat"), 60, "3 replicas Available")
        assert obj["metadata"]["generation"] == 2
        assert obj["status"]["readyReplicas"] == 3
        deployment = client.get(f"/apis/apps/v1/namespaces/{namespace}/deployments/chat").json()
        assert deployment["spec"]["replicas"] == 3 and deployment["status"]["readyReplicas"] == 3
    text = kubellm(control_plane, "status", "chat", "-n", namespace).stdout
    assert "chat: Available" in text and "Available=True ReplicasReady" in text and "3/3 ready" in text


def test_new_model_fills_a_new_cache_then_replaces_engines_and_retires_the_old_loader(
    control_plane: ControlPlane, operator: OperatorProcess, namespace: str, tmp_path: Path
) -> None:
    base = dict(engine={"kind": "vllm"}, resources={"accelerator": {"type": "NVIDIA-L4", "count": 1}})
    spec = write_spec(tmp_path / "s.yaml", "llm", model={"uri": "hf://org/model-a"}, **base)
    kubellm(control_plane, "apply", str(spec), "--resource", "-n", namespace)
    with control_plane.http() as client:
        wait_for(lambda: settled(client, namespace, "llm"), 90, f"llm Available\n{operator.tail()}")
        (old_job,) = [j["metadata"]["name"] for j in items(client, f"/apis/batch/v1/namespaces/{namespace}/jobs")]
        write_spec(spec, "llm", model={"uri": "hf://org/model-b"}, **base)
        kubellm(control_plane, "apply", str(spec), "--resource", "-n", namespace)
        wait_for(lambda: settled(client, namespace, "llm"), 90, f"llm Available after the model change\n{operator.tail()}")
        jobs = items(client, f"/apis/batch/v1/namespaces/{namespace}/jobs")
        assert [j["metadata"]["name"] for j in jobs] != [old_job] and len(jobs) == 1, "the old loader Job is pruned"
        deployment = client.get(f"/apis/apps/v1/namespaces/{namespace}/deployments/llm").json()
        args = yaml.safe_dump(deployment["spec"]["template"])
        assert "model-b" in args and "model-a" not in args
        # The engines were changed only after the new cache was filled.
        (applied,) = [m["time"] for m in deployment["metadata"]["managedFields"] if m["manager"] == "kubellm-operator"]
        assert applied >= jobs[0]["status"]["completionTime"]


def test_invalid_field_is_rejected_by_the_api_server(control_plane: ControlPlane, namespace: str) -> None:
    body = {"apiVersion": "kubellm.dev/v1alpha1", "kind": "LLMService", "metadata": {"name": "bad"},
            "spec": {"model": {"uri": "sim://x"}, "engine": {"kind": "tensorflow"}}}
    with control_plane.http() as client:
        response = client.post(f"{API}/namespaces/{namespace}/llmservices", json=body)
    assert response.status_code == 422
    assert "spec.engine.kind" in response.text and "tensorflow" in response.text


def test_cross_field_error_is_reported_as_degraded_with_the_field_path(
    control_plane: ControlPlane, operator: OperatorProcess, namespace: str
) -> None:
    """Valid field by field (so the CRD schema accepts it), invalid as a whole."""
    body = {"apiVersion": "kubellm.dev/v1alpha1", "kind": "LLMService", "metadata": {"name": "nogpu"},
            "spec": {"model": {"uri": "hf://org/m"}, "engine": {"kind": "vllm"}, "resources": {"accelerator": {"count": 0}}}}
    with control_plane.http() as client:
        client.post(f"{API}/namespaces/{namespace}/llmservices", json=body).raise_for_status()
        obj = wait_for(lambda: settled(client, namespace, "nogpu", "Degraded"), 30, f"Degraded\n{operator.tail()}")
        degraded = next(c for c in obj["status"]["conditions"] if c["type"] == "Degraded")
        assert degraded["reason"] == "InvalidSpec" and "spec.resources.accelerator.count" in degraded["message"]
        assert owned(client, namespace, "nogpu") == []
        events = items(client, f"/api/v1/namespaces/{namespace}/events")
        assert any(e["reason"] == "InvalidSpec" and e["involvedObject"]["name"] == "nogpu" for e in events)


def test_pods_the_cluster_refuses_make_it_degraded_with_the_reason(
    control_plane: ControlPlane, operator: OperatorProcess, namespace: str, tmp_path: Path
) -> None:
    spec = write_spec(tmp_path / "s.yaml", "refused", model={"uri": "sim://tiny-chat"}, engine={"kind": "sim"},
                      resources={"priorityClassName": "no-such-class"})
    kubellm(control_plane, "apply", str(spec), "--resource", "-n", namespace)
    with control_plane.http() as client:
        obj = wait_for(lambda: settled(client, namespace, "refused", "Degraded"), 60, f"Degraded\n{operator.tail()}")
    degraded = next(c for c in obj["status"]["conditions"] if c["type"] == "Degraded")
    assert degraded["reason"] == "ReplicaFailure" and "no-such-class" in degraded["message"]


def test_delete_removes_everything_it_created(control_plane: ControlPlane, operator: OperatorProcess, namespace: str) -> None:
    example = Path(__file__).resolve().parents[3] / "examples" / "mistral-7b-l4-gcs.yaml"
    name = yaml.safe_load(example.read_text())["metadata"]["name"]
    kubellm(control_plane, "apply", str(example), "--resource", "-n", namespace)
    with control_plane.http() as client:
        wait_for(lambda: settled(client, namespace, name), 90, f"{name} Available\n{operator.tail()}")
        assert len(owned(client, namespace, name)) >= 6
        assert client.get(f"/api/v1/namespaces/{namespace}/configmaps/kubellm-gateway").status_code == 200
        out = kubellm(control_plane, "delete", name, "-n", namespace, "--timeout=60")
        assert f"LLMService/{name}" in out.stdout
        assert owned(client, namespace, name) == []
        assert client.get(f"{API}/namespaces/{namespace}/llmservices/{name}").status_code == 404
        # the namespace's gateway config went with its last service
        wait_for(lambda: client.get(f"/api/v1/namespaces/{namespace}/configmaps/kubellm-gateway").status_code == 404, 30,
                 "the gateway ConfigMap gone")
        wait_for(lambda: not items(client, f"/api/v1/namespaces/{namespace}/pods"), 60, "pods gone")


def test_direct_apply_without_operator_and_its_delete(control_plane: ControlPlane, namespace: str) -> None:
    """`kubellm apply SPEC` (no --resource) needs no operator: objects carry our labels, no owner."""
    example = Path(__file__).resolve().parents[3] / "examples" / "quickstart.yaml"
    out = kubellm(control_plane, "apply", str(example), "-n", namespace)
    assert "applied" in out.stdout
    with control_plane.http() as client:
        deployment = client.get(f"/apis/apps/v1/namespaces/{namespace}/deployments/quickstart").json()
        assert "ownerReferences" not in deployment["metadata"]
        assert {m["manager"] for m in deployment["metadata"]["managedFields"] if m["operation"] == "Apply"} == {"kubellm-cli"}
        assert owned(client, namespace, "quickstart")
        kubellm(control_plane, "delete", "quickstart", "-n", namespace, "--timeout=60")
        assert owned(client, namespace, "quickstart") == []


def test_a_failed_new_cache_stops_the_rollout_says_why_and_old_engines_keep_serving(
    control_plane: ControlPlane, operator: OperatorProcess, namespace: str, tmp_path: Path
) -> None:
    """The new model's loader stalls (its kwok pod never completes) until the Job's deadline
    fails it: the engines stay on the old model, the status and an Event say LoaderFailed,
    and a corrected spec rolls out."""
    base = dict(engine={"kind": "vllm"}, resources={"accelerator": {"type": "NVIDIA-L4", "count": 1}})
    spec = write_spec(tmp_path / "s.yaml", "roll", model={"uri": "hf://org/model-a"}, **base)
    kubellm(control_plane, "apply", str(spec), "--resource", "-n", namespace)
    with control_plane.http() as client:
        wait_for(lambda: settled(client, namespace, "roll"), 90, f"roll Available\n{operator.tail()}")
        body = yaml.safe_load(spec.read_text())
        body["metadata"]["labels"] = {"kwok_outcome": "stall"}
        body["spec"]["model"]["uri"] = "hf://org/model-b"
        body["spec"]["cache"] = {"loaderActiveDeadlineSeconds": 5}
        spec.write_text(yaml.safe_dump(body))
        kubellm(control_plane, "apply", str(spec), "--resource", "-n", namespace)
        obj = wait_for(lambda: settled(client, namespace, "roll", "Degraded"), 120, f"roll Degraded\n{operator.tail()}")
        conditions = {c["type"]: c for c in obj["status"]["conditions"]}
        assert conditions["Degraded"]["reason"] == "LoaderFailed", conditions
        assert conditions["Available"]["status"] == "True"  # the old engines still serve
        template = yaml.safe_dump(client.get(f"/apis/apps/v1/namespaces/{namespace}/deployments/roll").json()["spec"]["template"])
        assert "model-a" in template and "model-b" not in template
        events = items(client, f"/api/v1/namespaces/{namespace}/events")
        assert any(e["type"] == "Warning" and e["reason"] == "LoaderFailed" for e in events), [e["reason"] for e in events]

        write_spec(spec, "roll", model={"uri": "hf://org/model-c"}, **base)
        kubellm(control_plane, "apply", str(spec), "--resource", "-n", namespace)
        wait_for(lambda: settled(client, namespace, "roll"), 120, f"roll Available on model-c\n{operator.tail()}")
        template = yaml.safe_dump(client.get(f"/apis/apps/v1/namespaces/{namespace}/deployments/roll").json()["spec"]["template"])
        assert "model-c" in template and "model-a" not in template
