"""Steps shared by the real-node modules that run kubellm as a user does (test_realnode_kubellm,
test_realnode_netpol): reading the cluster, `kubellm install` from kubellm's image in the
node's registry, moto's S3 server in the node's namespace with the quickstart's model files,
the quickstart LLMService spec, and waits whose failure shows the namespace's pods and events.
"""

from __future__ import annotations

import json
import os
import struct
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import boto3
import httpx
import yaml

from kubellm.operator.testing import ControlPlane
from kubellm.operator.testing.harness import kubellm, wait_for
from kubellm.operator.testing.realnode import RealNode

ROOT = Path(__file__).resolve().parents[3]
# scripts/image/build.sh writes them here; KUBELLM_IMAGES_DIR points elsewhere (a local variant).
IMAGES = Path(os.environ.get("KUBELLM_IMAGES_DIR", ROOT / ".tools" / "images"))
NS = "llm"
OPERATOR_NS = "kubellm-system"
API = "/apis/kubellm.dev/v1alpha1"
RESTRICTED = {f"pod-security.kubernetes.io/{mode}": "restricted" for mode in ("enforce", "warn", "audit")}


def get(plane: ControlPlane, path: str, **params: str) -> dict[str, Any]:
    with plane.http() as client:
        response = client.get(path, params=params)
        response.raise_for_status()
        return dict(response.json())


def post(plane: ControlPlane, path: str, body: dict[str, Any]) -> None:
    with plane.http() as client:
        response = client.post(path, json=body)
        assert response.status_code in (201, 409), response.text


def report_timings(node: RealNode, timings: dict[str, float], title: str) -> None:
    """What each step took on this run, with the node's own start-up steps: printed and kept
    beside the run's logs (docs/realnode.md)."""
    timings.update({f"node: {k}": round(v, 1) for k, v in node.timings.items()})
    (node.paths.state.parent / "timings.json").write_text(json.dumps(timings, indent=1))
    print(f"\n{title} (s):", json.dumps(timings, indent=1))


def pods(plane: ControlPlane, ns: str, selector: str) -> list[dict[str, Any]]:
    return list(get(plane, f"/api/v1/namespaces/{ns}/pods", labelSelector=selector)["items"])


def ready(pod: dict[str, Any]) -> bool:
    conditions = pod.get("status", {}).get("conditions", [])
    return pod["metadata"].get("deletionTimestamp") is None and any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def wait(plane: ControlPlane, ns: str, check: Callable[[], Any], timeout: float, what: str) -> Any:
    """wait_for, with the namespace's pods and events in the failure (read when it fails)."""
    try:
        return wait_for(check, timeout, what)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{describe(plane, ns)}") from None


def describe(plane: ControlPlane, ns: str) -> str:
    """The pods of *ns* and their container states, for a failure message."""
    lines = []
    for pod in get(plane, f"/api/v1/namespaces/{ns}/pods")["items"]:
        statuses = pod.get("status", {}).get("containerStatuses", []) + pod.get("status", {}).get("initContainerStatuses", [])
        lines.append(f"{pod['metadata']['name']} {pod['status'].get('phase')} {[s.get('state') for s in statuses]}")
    events = get(plane, f"/api/v1/namespaces/{ns}/events")["items"]
    lines += [f"event {e['involvedObject']['name']}: {e['reason']} {e.get('message', '')}" for e in events[-15:]]
    return "\n".join(lines)


def logs(plane: ControlPlane, ns: str, pod: str, tail: int = 30) -> str:
    with plane.http() as client:
        return client.get(f"/api/v1/namespaces/{ns}/pods/{pod}/log", params={"tailLines": str(tail)}).text


def namespace(plane: ControlPlane, name: str, labels: dict[str, str] | None = None) -> None:
    """A namespace enforcing the restricted Pod Security Standard (plus *labels*)."""
    body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": {**RESTRICTED, **(labels or {})}}}
    post(plane, "/api/v1/namespaces", body)


def push_images(node: RealNode, names: Sequence[str]) -> dict[str, str]:
    """kubellm's images (scripts/image/build.sh), pushed to the node's registry: {name: reference pods use}."""
    archives = {name: IMAGES / f"{name}.oci.tar" for name in names}
    absent = [str(a) for a in archives.values() if not a.is_file()]
    assert not absent, f"kubellm's images are not built ({', '.join(absent)}): run scripts/image/build.sh"
    return {name: node.push_image(archive) for name, archive in archives.items()}


def install(plane: ControlPlane, image: str, *flags: str) -> None:
    """`kubellm install --image IMAGE FLAGS...`, then both operator pods Ready."""
    kubellm(plane, "install", f"--image={image}", *flags)
    wait(plane, OPERATOR_NS, lambda: rolled_out(plane, OPERATOR_NS, "kubellm-operator"), 120, "the operator's pods Ready")


def rolled_out(plane: ControlPlane, ns: str, name: str) -> bool:
    """The Deployment's current generation has all its replicas updated and Ready."""
    deployment = get(plane, f"/apis/apps/v1/namespaces/{ns}/deployments/{name}")
    status, replicas = deployment.get("status", {}), int(deployment["spec"].get("replicas", 1))
    return bool(status.get("observedGeneration") == deployment["metadata"]["generation"] and (
        status.get("updatedReplicas") == status.get("readyReplicas") == status.get("replicas") == replicas
    ))


def start_s3(plane: ControlPlane, node: RealNode, port: int) -> str:
    """moto's S3 server in the node's network namespace on *port*, with the quickstart's model
    files, reached from the `llm` namespace through a selectorless Service (port 80) and a
    Secret `s3` with the credentials and endpoint: returns the endpoint URL pods use."""
    moto = str(Path(sys.executable).parent / "moto_server")
    node.start_process("moto", [moto, "-H", node.network.node_ip, "-p", str(port)])
    wait_for(lambda: answers(host_s3(node, port)), 30, "moto_server")
    client = bucket(node, port)
    client.create_bucket(Bucket="models")
    client.put_object(Bucket="models", Key="tiny-chat/config.json", Body=json.dumps({"model_type": "llama"}).encode())
    client.put_object(Bucket="models", Key="tiny-chat/model.safetensors", Body=safetensors(256 * 1024))
    namespace(plane, NS)
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s3"}, "spec": {"ports": [{"name": "http", "port": 80}]}}
    post(plane, f"/api/v1/namespaces/{NS}/services", service)
    endpoints = {
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": "s3", "labels": {"kubernetes.io/service-name": "s3"}},
        "addressType": "IPv4",
        "endpoints": [{"addresses": [node.network.node_ip]}],
        "ports": [{"name": "http", "port": port, "protocol": "TCP"}],
    }
    post(plane, f"/apis/discovery.k8s.io/v1/namespaces/{NS}/endpointslices", endpoints)
    cluster_ip = get(plane, f"/api/v1/namespaces/{NS}/services/s3")["spec"]["clusterIP"]
    url = f"http://{cluster_ip}"
    secret = {
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s3"},
        "stringData": {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_ENDPOINT_URL_S3": url, "AWS_DEFAULT_REGION": "us-east-1"},
    }
    post(plane, f"/api/v1/namespaces/{NS}/secrets", secret)
    return url


def host_s3(node: RealNode, port: int) -> str:
    """moto's address as the test (on the host) reaches it."""
    return f"http://{node.network.node_ip}:{port}"


def bucket(node: RealNode, port: int) -> Any:
    return boto3.client("s3", endpoint_url=host_s3(node, port), aws_access_key_id="test", aws_secret_access_key="test", region_name="us-east-1")


def safetensors(floats: int) -> bytes:
    """A valid safetensors file (the loader checks the header) of one zero tensor."""
    header = json.dumps({"w": {"dtype": "F32", "shape": [floats], "data_offsets": [0, 4 * floats]}}).encode()
    header += b" " * (-len(header) % 8)
    return struct.pack("<Q", len(header)) + header + bytes(4 * floats)


def answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code < 500
    except httpx.HTTPError:
        return False


def spec(tmp: Path, name: str, engine: dict[str, Any] | None = None, model: dict[str, Any] | None = None,
         extra: dict[str, Any] | None = None, **sim: Any) -> Path:
    """The quickstart LLMService (simulator engine, model files in S3) as a file; *extra*
    merges into its spec."""
    body = {
        "apiVersion": "kubellm.dev/v1alpha1",
        "kind": "LLMService",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "model": {"uri": "s3://models/tiny-chat", "servedName": "tiny-chat", "credentials": {"name": "s3"}, **(model or {})},
            "cache": {"size": "1Gi"},
            # A quarter CPU: the node has two, shared by the operator, loaders and surge pods.
            "resources": {"cpu": "250m", "memory": "512Mi"},
            "engine": {"kind": "sim", "sim": {"profile": "llama-3.1-8b-h100", **sim}, **(engine or {})},
            **(extra or {}),
        },
    }
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(body))
    return path


def llmservice(plane: ControlPlane, name: str) -> dict[str, Any]:
    return get(plane, f"{API}/namespaces/{NS}/llmservices/{name}")


def available(plane: ControlPlane, name: str) -> bool:
    obj = llmservice(plane, name)
    status = obj.get("status") or {}
    return status.get("phase") == "Available" and status.get("observedGeneration") == obj["metadata"]["generation"]


def loaded(plane: ControlPlane, name: str) -> bool:
    """The service's loader Jobs have all succeeded."""
    jobs = get(plane, f"/apis/batch/v1/namespaces/{NS}/jobs", labelSelector=f"kubellm.dev/service={name}")["items"]
    return bool(jobs) and all(j.get("status", {}).get("succeeded") == 1 for j in jobs)


def service_url(plane: ControlPlane, name: str, ns: str = NS) -> str:
    """http://CLUSTER-IP:PORT of a Service."""
    service = get(plane, f"/api/v1/namespaces/{ns}/services/{name}")
    port = service["spec"]["ports"][0]["port"]
    return f"http://{service['spec']['clusterIP']}:{port}"


def timed(timings: dict[str, float], name: str, began: float) -> None:
    timings[name] = round(time.monotonic() - began, 1)
