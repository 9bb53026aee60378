"""spec.exposure's custom resources checked by the real API server against the upstream CRDs
(tests/integration/operator/crds: Gateway API HTTPRoute and ReferenceGrant, cert-manager
Certificate): each rendered object passes a server-side dry run with strict field
validation, and a broken one is refused (the check can fail). The gateway's own objects
(`kubellm render --gateway`) pass the same dry run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from kubellm.gateway.fromspec import gateway_configmap
from kubellm.operator.testing import ControlPlane
from kubellm.operator.testing.apiserver import dry_run as apiserver_dry_run
from kubellm.operator.testing.apiserver import install_crd
from kubellm.render import render
from kubellm.render.gateway import gateway_objects
from kubellm.spec import LLMService, parse_spec

pytestmark = pytest.mark.controlplane
CRDS = Path(__file__).parent / "crds"
PLURALS = {"HTTPRoute": "httproutes", "ReferenceGrant": "referencegrants", "Certificate": "certificates",
           "NetworkPolicy": "networkpolicies", "PodDisruptionBudget": "poddisruptionbudgets",
           "HorizontalPodAutoscaler": "horizontalpodautoscalers"}


def install_crds(client: httpx.Client) -> None:
    for path in sorted(CRDS.glob("*.yaml")):
        for crd in filter(None, yaml.safe_load_all(path.read_text())):
            install_crd(client, crd)


def dry_run(client: httpx.Client, obj: dict[str, Any]) -> httpx.Response:
    return apiserver_dry_run(client, obj, PLURALS)


def exposed(namespace: str) -> LLMService:
    exposure = {
        "httpRoute": {"host": "llm.example.com", "gatewayName": "public", "gatewayNamespace": "edge", "sectionName": "https",
                      "backendService": "kubellm-gateway", "tls": {"secretName": "llm-tls", "issuer": {"name": "letsencrypt"}}},
        "ingress": {"host": "llm.example.com", "backendService": "kubellm-gateway",
                    "tls": {"secretName": "llm-tls", "issuer": {"name": "letsencrypt"}}},
    }
    return parse_spec({"apiVersion": "kubellm.dev/v1alpha1", "kind": "LLMService",
                       "metadata": {"name": "chat", "namespace": namespace},
                       "spec": {"model": {"uri": "sim://m"}, "engine": {"kind": "sim"}, "exposure": exposure,
                                "security": {"apiKeys": {"secretRef": {"name": "keys"}}}}})


def test_exposure_objects_pass_the_upstream_crd_schemas(control_plane: ControlPlane, namespace: str) -> None:
    objects = [o for o in render(exposed(namespace), "1.34") if o["kind"] in ("HTTPRoute", "ReferenceGrant", "Certificate")]
    assert sorted(o["kind"] for o in objects) == ["Certificate", "HTTPRoute", "ReferenceGrant"]
    with control_plane.http() as client:
        install_crds(client)
        for obj in objects:
            response = dry_run(client, obj)
            assert response.status_code == 201, f"{obj['kind']}: {response.text}"
        broken = next(o for o in objects if o["kind"] == "HTTPRoute")
        broken = {**broken, "spec": {**broken["spec"], "hostnames": ["Not A Host"]}}
        assert dry_run(client, broken).status_code == 422
        typo = next(o for o in objects if o["kind"] == "Certificate")
        typo = {**typo, "spec": {**typo["spec"], "dnsName": ["x"]}}
        assert dry_run(client, typo).status_code in (400, 422)


def test_the_gateway_objects_pass_server_side_validation(control_plane: ControlPlane, namespace: str) -> None:
    service = exposed(namespace)
    objects = [gateway_configmap(namespace, [service])] + [
        o for o in gateway_objects(namespace, [service], target=(1, 34)) if o["kind"] != "PodMonitor"]
    with control_plane.http() as client:
        for obj in objects:
            response = dry_run(client, obj)
            assert response.status_code == 201, f"{obj['kind']}: {response.text}"
        # PodSecurity admission enforcing "restricted" admits the gateway's pod
        client.patch(f"/api/v1/namespaces/{namespace}", json={"metadata": {"labels": {"pod-security.kubernetes.io/enforce": "restricted"}}},
                     headers={"Content-Type": "application/merge-patch+json"}).raise_for_status()
        account = next(o for o in objects if o["kind"] == "ServiceAccount")  # admission looks it up
        client.post(f"/api/v1/namespaces/{namespace}/serviceaccounts", json=account).raise_for_status()
        template = next(o for o in objects if o["kind"] == "Deployment")["spec"]["template"]
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {**template["metadata"], "name": "gw", "namespace": namespace},
               "spec": template["spec"]}
        response = dry_run(client, pod)
        assert response.status_code == 201, response.text
        pod["spec"] = {**pod["spec"], "containers": [{**c, "securityContext": {}} for c in pod["spec"]["containers"]],
                       "securityContext": {}}
        refused = dry_run(client, pod)  # the admission really enforces
        assert refused.status_code == 403 and "violates PodSecurity" in refused.text
