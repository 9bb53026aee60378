"""The real node itself, with the harness's own small image (busybox): it registers and becomes
Ready beside a kwok node, runs a restricted pod through a real readiness probe, routes a
ClusterIP Service (from the host, as a client outside the cluster does, and from a pod to the
API server's own ``kubernetes`` Service), serves pod logs through the API server, and keeps a
second node from starting on the same machine."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from kubellm.operator.testing import ControlPlane
from kubellm.operator.testing.harness import wait_for
from kubellm.operator.testing.nodeconfig import REAL_NODE_LABEL, NodeNetwork
from kubellm.operator.testing.realnode import NODE_IMAGES, RealNode, RealNodeBusy, check_free, image_ref

pytestmark = [pytest.mark.realnode, pytest.mark.controlplane]

RESTRICTED = {
    "runAsNonRoot": True,
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}


def _container(name: str, command: list[str], **extra: Any) -> dict[str, Any]:
    return {"name": name, "image": image_ref(NODE_IMAGES / "testbox.oci.tar"), "command": command, "securityContext": RESTRICTED, **extra}


def _pod(name: str, container: dict[str, Any], restart: str = "Always") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {"containers": [container], "restartPolicy": restart, "terminationGracePeriodSeconds": 1},
    }


def _create(plane: ControlPlane, path: str, body: dict[str, Any]) -> dict[str, Any]:
    with plane.http() as client:
        response = client.post(path, json=body)
        assert response.status_code == 201, response.text
        return dict(response.json())


def _get(plane: ControlPlane, path: str) -> dict[str, Any]:
    with plane.http() as client:
        response = client.get(path)
        response.raise_for_status()
        return dict(response.json())


def test_node_registers_ready_beside_kwok(plane: ControlPlane, node: RealNode) -> None:
    real = _get(plane, f"/api/v1/nodes/{node.name}")
    assert real["metadata"]["labels"][REAL_NODE_LABEL] == "true"
    info = real["status"]["nodeInfo"]
    assert info["containerRuntimeVersion"].startswith("containerd://1.")
    assert info["kubeletVersion"] == "v1.34.4"
    assert {"type": "InternalIP", "address": NodeNetwork().node_ip} in real["status"]["addresses"]
    names = {n["metadata"]["name"] for n in _get(plane, "/api/v1/nodes")["items"]}
    assert names == {node.name, "kwok-gpu-0"}
    assert node.timings["node-ready"] < 60


def test_restricted_pod_serves_through_a_clusterip_service(plane: ControlPlane, node: RealNode, namespace: str) -> None:
    probe = {"httpGet": {"path": "/index.html", "port": 8080}, "periodSeconds": 1}
    web = _container("web", ["httpd", "-f", "-p", "8080", "-h", "/www"], readinessProbe=probe, ports=[{"containerPort": 8080}])
    _create(plane, f"/api/v1/namespaces/{namespace}/pods", _pod("web", web))
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web"},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]},
    }
    cluster_ip = _create(plane, f"/api/v1/namespaces/{namespace}/services", service)["spec"]["clusterIP"]

    def ready() -> bool:
        status = _get(plane, f"/api/v1/namespaces/{namespace}/pods/web")["status"]
        return any(c["type"] == "Ready" and c["status"] == "True" for c in status.get("conditions", []))

    wait_for(ready, 60, "the web pod Ready through its readiness probe")
    pod = _get(plane, f"/api/v1/namespaces/{namespace}/pods/web")
    assert pod["spec"]["nodeName"] == node.name
    assert httpx.get(f"http://{pod['status']['podIP']}:8080/index.html", timeout=5).text == "ok\n"

    def through_service() -> str:
        try:
            return httpx.get(f"http://{cluster_ip}/index.html", timeout=2).text
        except httpx.HTTPError:
            return ""  # kube-proxy writes the Service's rules a moment after its endpoint is ready

    assert wait_for(through_service, 30, f"the Service {cluster_ip} routed by kube-proxy") == "ok\n"


def test_pod_reaches_the_api_server_service_and_logs_come_back(plane: ControlPlane, namespace: str) -> None:
    # Plain HTTP to the API server's HTTPS port: its "400 Bad Request" proves the route through
    # the kubernetes Service (kube-proxy) to the API server on the host side of the veth.
    target = f"http://{NodeNetwork().kubernetes_service_ip}:443/"
    probe = _container("probe", ["wget", "-q", "-O-", target])
    _create(plane, f"/api/v1/namespaces/{namespace}/pods", _pod("probe", probe, restart="Never"))

    def finished() -> str:
        return str(_get(plane, f"/api/v1/namespaces/{namespace}/pods/probe")["status"].get("phase", ""))

    assert wait_for(lambda: finished() in ("Succeeded", "Failed") and finished(), 60, "the probe pod to finish")
    with plane.http() as client:
        log = client.get(f"/api/v1/namespaces/{namespace}/pods/probe/log").text
    assert "400 Bad Request" in log


def test_a_second_node_is_refused_while_one_runs(node: RealNode) -> None:
    with pytest.raises(RealNodeBusy, match="in use by process"):
        check_free(NodeNetwork())
