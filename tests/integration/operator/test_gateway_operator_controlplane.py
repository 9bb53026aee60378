"""The namespace gateway kept by the operator, on the real control plane (kube-apiserver,
controller-manager, scheduler built from source; kwok stands in for the kubelets, so the
gateway's pods are scheduled and reported Ready but no process runs in them):

- the operator creates the gateway's objects, owned by every LLMService of the namespace,
  and the gateway's discovery, authenticated as the gateway's own ServiceAccount (exactly its
  rendered Role), finds the engine pods through the config the operator wrote;
- a missing API-key Secret: that service is Degraded naming it, its model is left out of
  the config while the other model stays; once the Secret exists both are served with keys;
- a hand-broken ConfigMap is written back, with a Warning event saying it was invalid;
- a second service claiming the first one's exposure host is refused, naming both;
- the last service deleted takes the gateway with it.
"""

from __future__ import annotations

import asyncio
import base64
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from lightkube import AsyncClient, KubeConfig

from kubellm.gateway.config import parse_config
from kubellm.gateway.k8s import KubernetesDiscovery
from kubellm.operator.testing import ControlPlane, OperatorProcess, kubellm, wait_for
from tests.integration.operator.test_gateway_discovery_controlplane import Recorder, pod_ips, until

pytestmark = pytest.mark.controlplane

API = "/apis/kubellm.dev/v1alpha1"
GATEWAY_PATHS = {
    "ServiceAccount": "/api/v1/namespaces/{ns}/serviceaccounts/kubellm-gateway",
    "Service": "/api/v1/namespaces/{ns}/services/kubellm-gateway",
    "ConfigMap": "/api/v1/namespaces/{ns}/configmaps/kubellm-gateway",
    "Role": "/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/roles/kubellm-gateway",
    "RoleBinding": "/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/rolebindings/kubellm-gateway",
    "NetworkPolicy": "/apis/networking.k8s.io/v1/namespaces/{ns}/networkpolicies/kubellm-gateway",
    "Deployment": "/apis/apps/v1/namespaces/{ns}/deployments/kubellm-gateway",
    "PodDisruptionBudget": "/apis/policy/v1/namespaces/{ns}/poddisruptionbudgets/kubellm-gateway",
    "HorizontalPodAutoscaler": "/apis/autoscaling/v2/namespaces/{ns}/horizontalpodautoscalers/kubellm-gateway",
}


def write_spec(path: Path, name: str, **spec: Any) -> Path:
    body = {"apiVersion": "kubellm.dev/v1alpha1", "kind": "LLMService", "metadata": {"name": name},
            "spec": {"engine": {"kind": "sim"}, **spec}}
    path.write_text(yaml.safe_dump(body))
    return path


def get(client: httpx.Client, path: str) -> dict[str, Any] | None:
    response = client.get(path)
    return None if response.status_code == 404 else dict(response.raise_for_status().json())


def degraded(client: httpx.Client, ns: str, name: str) -> dict[str, Any] | None:
    obj = get(client, f"{API}/namespaces/{ns}/llmservices/{name}") or {}
    found = [c for c in (obj.get("status") or {}).get("conditions", []) if c["type"] == "Degraded" and c["status"] == "True"]
    return found[0] if found else None


def served_models(client: httpx.Client, ns: str) -> dict[str, Any] | None:
    """Model name -> the live gateway config's model entry; with the config's auth under ``auth``."""
    live = get(client, GATEWAY_PATHS["ConfigMap"].format(ns=ns))
    if live is None:
        return None
    config = parse_config(yaml.safe_load(live["data"]["gateway.yaml"]))
    return {**{m.name: m for m in config.models}, "auth": config.auth.api_keys_file}


def gateway_objects(client: httpx.Client, ns: str) -> dict[str, dict[str, Any]]:
    found = {kind: get(client, path.format(ns=ns)) for kind, path in GATEWAY_PATHS.items()}
    return {kind: obj for kind, obj in found.items() if obj is not None}


async def discovered_by_the_gateway_account(plane: ControlPlane, ns: str, config: dict[str, Any], pool: str) -> list[str]:
    """The gateway's own discovery, with the operator's config and the gateway's ServiceAccount."""
    kubeconfig = plane.service_account_kubeconfig(ns, "kubellm-gateway")
    client = AsyncClient(config=KubeConfig.from_file(str(kubeconfig)))
    recorder = Recorder()
    watch = asyncio.create_task(KubernetesDiscovery(parse_config(config).kubernetes, client).run(recorder))  # type: ignore[arg-type]
    try:
        return await until(recorder, pool, 2)
    finally:
        watch.cancel()
        await asyncio.gather(watch, return_exceptions=True)
        await client.close()


async def test_the_operator_keeps_the_gateway_of_the_namespace(
    control_plane: ControlPlane, operator: OperatorProcess, namespace: str, tmp_path: Path
) -> None:
    keys = {"apiKeys": {"secretRef": {"name": "chat-keys", "key": "keys"}}}
    open_spec = write_spec(tmp_path / "open.yaml", "open", model={"uri": "sim://open-model"}, scaling={"minReplicas": 2})
    keyed_spec = write_spec(tmp_path / "keyed.yaml", "keyed", model={"uri": "sim://keyed-model"}, security=keys)
    for path in (open_spec, keyed_spec):
        await asyncio.to_thread(kubellm, control_plane, "apply", str(path), "--resource", "-n", namespace)
    with control_plane.http() as client:
        # Each service's pass adds it as an owner: the objects appear with the first one, and
        # are owned by both once the second pass has run.
        def owned_by_both(found: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]] | None:
            owners = [{r["name"] for r in o["metadata"].get("ownerReferences", [])} for o in found.values()]
            return found if len(found) == len(GATEWAY_PATHS) and all(o == {"open", "keyed"} for o in owners) else None

        objects = wait_for(lambda: owned_by_both(gateway_objects(client, namespace)), 60, "every gateway object, owned by both services")
        assert objects["Role"]["rules"] == [{"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": ["list", "watch"]}]

        # The missing Secret: Degraded naming it; the other model is served, this one is not.
        condition = wait_for(lambda: degraded(client, namespace, "keyed"), 60, "keyed Degraded")
        assert condition["reason"] == "ApiKeySecretMissing" and "'chat-keys'" in condition["message"]
        models = served_models(client, namespace)
        assert models is not None and "open-model" in models and "keyed-model" not in models and models["auth"] is None
        assert degraded(client, namespace, "open") is None

        secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "chat-keys"},
                  "data": {"keys": base64.b64encode(b"team-a:k1\n").decode()}}
        client.post(f"/api/v1/namespaces/{namespace}/secrets", json=secret).raise_for_status()
        wait_for(lambda: degraded(client, namespace, "keyed") is None, 60, "keyed no longer Degraded")
        models = wait_for(lambda: (lambda m: m if m and "keyed-model" in m else None)(served_models(client, namespace)),
                          30, "keyed-model in the config")
        assert "open-model" in models and str(models["auth"]) == "/etc/kubellm/api-keys/keyed"

        # Status: the gateway's readiness (kwok reports its pods Ready) and the client URL.
        status = wait_for(lambda: (((get(client, f"{API}/namespaces/{namespace}/llmservices/open") or {})
                                    .get("status") or {}).get("gateway") or {}).get("ready") and
                          get(client, f"{API}/namespaces/{namespace}/llmservices/open")["status"]["gateway"],  # type: ignore[index]
                          90, "status.gateway.ready")
        assert status["url"] == f"http://kubellm-gateway.{namespace}.svc:80/v1" and status["readyReplicas"] >= 1

        # The gateway's discovery with its own account finds the engines of the config's pools.
        config = yaml.safe_load(get(client, GATEWAY_PATHS["ConfigMap"].format(ns=namespace))["data"]["gateway.yaml"])  # type: ignore[index]
        urls = await discovered_by_the_gateway_account(control_plane, namespace, config, "open-model")
        assert {u.removeprefix("http://").rsplit(":", 1)[0] for u in urls} <= pod_ips(control_plane, namespace)

        # A hand-broken config is written back and reported.
        live = get(client, GATEWAY_PATHS["ConfigMap"].format(ns=namespace))
        assert live is not None
        good = live["data"]["gateway.yaml"]
        client.patch(GATEWAY_PATHS["ConfigMap"].format(ns=namespace), json={"data": {"gateway.yaml": "models: [{nme: x}]"}},
                     headers={"Content-Type": "application/merge-patch+json"}).raise_for_status()
        wait_for(lambda: get(client, GATEWAY_PATHS["ConfigMap"].format(ns=namespace))["data"]["gateway.yaml"] == good,  # type: ignore[index]
                 30, "the generated config written back")
        events = wait_for(lambda: [e for e in client.get(f"/api/v1/namespaces/{namespace}/events").json()["items"]
                                   if e["reason"] == "GatewayConfigInvalidEdit"], 30, "a GatewayConfigInvalidEdit event")
        assert "last good config" in events[0]["message"]

    for name in ("open", "keyed"):
        await asyncio.to_thread(kubellm, control_plane, "delete", name, "-n", namespace, "--timeout=60")
    with control_plane.http() as client:
        wait_for(lambda: not gateway_objects(client, namespace), 60, "the gateway gone with the last service")


def test_a_second_service_claiming_a_host_is_refused_naming_both(
    control_plane: ControlPlane, operator: OperatorProcess, namespace: str, tmp_path: Path
) -> None:
    exposure = {"ingress": {"host": f"{namespace}.example.com"}}
    first = write_spec(tmp_path / "first.yaml", "first", model={"uri": "sim://first"}, exposure=exposure)
    kubellm(control_plane, "apply", str(first), "--resource", "-n", namespace)
    with control_plane.http() as client:
        wait_for(lambda: get(client, f"/apis/networking.k8s.io/v1/namespaces/{namespace}/ingresses/first"), 60, "first's Ingress")
        second = write_spec(tmp_path / "second.yaml", "second", model={"uri": "sim://second"},
                            exposure={"httpRoute": {"host": f"{namespace}.example.com", "gatewayName": "public"}})
        kubellm(control_plane, "apply", str(second), "--resource", "-n", namespace)
        condition = wait_for(lambda: degraded(client, namespace, "second"), 60, "second refused")
        assert condition["reason"] == "ExposureHostTaken"
        assert f"{namespace}/first" in condition["message"] and f"{namespace}/second" in condition["message"]
        assert get(client, f"/apis/apps/v1/namespaces/{namespace}/deployments/second") is None
        assert degraded(client, namespace, "first") is None


def test_doctor_finds_a_gateway_role_that_cannot_watch(
    control_plane: ControlPlane, operator: OperatorProcess, namespace: str, tmp_path: Path
) -> None:
    kubellm(control_plane, "apply", str(write_spec(tmp_path / "chat.yaml", "chat", model={"uri": "sim://chat"})),
            "--resource", "-n", namespace)
    role = GATEWAY_PATHS["Role"].format(ns=namespace)
    with control_plane.http() as client:
        wait_for(lambda: get(client, GATEWAY_PATHS["Deployment"].format(ns=namespace)) and get(client, role), 60, "the gateway")
        wait_for(lambda: get(client, f"/apis/apps/v1/namespaces/{namespace}/deployments/chat"), 60, "the engines")
        fine = kubellm(control_plane, "doctor", "-n", namespace, "-o", "json", check=False)
        checks = {f["check"]: f for f in json.loads(fine.stdout)}
        assert {checks[c]["level"] for c in ("gateway-rbac", "gateway-labels", "gateway-network")} == {"ok"}, fine.stdout
        # the operator's gateway: 2 replicas (its HPA's minimum) routing chat on approximate prefix affinity
        assert checks["gateway-prefix-processes"]["level"] == "warn", fine.stdout
        assert "across 2 gateway processes" in checks["gateway-prefix-processes"]["message"], fine.stdout
        rules = [{"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": ["list"]}]
        client.patch(role, json={"rules": rules}, headers={"Content-Type": "application/merge-patch+json"}).raise_for_status()
    broken = kubellm(control_plane, "doctor", "-n", namespace, check=False)
    assert broken.returncode == 3, broken.stdout + broken.stderr
    assert "FAIL gateway-rbac: Role kubellm-gateway does not grant watch on endpointslices.discovery.k8s.io" in broken.stdout
