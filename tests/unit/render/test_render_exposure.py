"""spec.exposure beyond the Ingress (render/exposure.py): the Gateway API HTTPRoute, the
cert-manager Certificate and the ReferenceGrant, and one host per service across services.
The objects' schemas are checked by the API server itself in
tests/integration/operator/test_gateway_exposure_controlplane.py."""

from __future__ import annotations

from typing import Any

import pytest

from kubellm.render import render
from kubellm.render.errors import HostConflictError
from kubellm.render.exposure import check_unique_hosts
from kubellm.spec import LLMService, parse_spec


def spec(name: str, exposure: dict[str, Any], namespace: str = "team") -> LLMService:
    return parse_spec({"apiVersion": "kubellm.dev/v1alpha1", "kind": "LLMService",
                       "metadata": {"name": name, "namespace": namespace},
                       "spec": {"model": {"uri": "sim://m"}, "engine": {"kind": "sim"}, "exposure": exposure}})


ROUTE = {"httpRoute": {"host": "llm.example.com", "gatewayName": "public", "gatewayNamespace": "edge",
                       "sectionName": "https", "backendService": "kubellm-gateway",
                       "tls": {"secretName": "llm-tls", "issuer": {"name": "letsencrypt"}}}}


def of_kind(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind]


def test_http_route_points_at_the_gateway_service_through_the_named_listener() -> None:
    [route] = of_kind(render(spec("chat", ROUTE)), "HTTPRoute")
    assert route["apiVersion"] == "gateway.networking.k8s.io/v1"
    assert route["spec"]["hostnames"] == ["llm.example.com"]
    assert route["spec"]["parentRefs"] == [{"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "public",
                                            "namespace": "edge", "sectionName": "https"}]
    assert route["spec"]["rules"][0]["backendRefs"] == [{"group": "", "kind": "Service", "name": "kubellm-gateway", "port": 80}]


def test_tls_with_an_issuer_renders_a_certificate_and_a_grant_for_the_other_namespace() -> None:
    objects = render(spec("chat", ROUTE))
    [cert] = of_kind(objects, "Certificate")
    assert cert["spec"] == {"dnsNames": ["llm.example.com"], "secretName": "llm-tls",
                            "issuerRef": {"group": "cert-manager.io", "kind": "ClusterIssuer", "name": "letsencrypt"}}
    [grant] = of_kind(objects, "ReferenceGrant")
    assert grant["spec"]["from"] == [{"group": "gateway.networking.k8s.io", "kind": "Gateway", "namespace": "edge"}]
    assert grant["spec"]["to"] == [{"group": "", "kind": "Secret", "name": "llm-tls"}]


def test_tls_from_a_plain_secret_and_a_same_namespace_gateway_need_neither() -> None:
    route = {"httpRoute": {"host": "llm.example.com", "gatewayName": "public", "tls": {"secretName": "llm-tls"}}}
    objects = render(spec("chat", route))
    assert of_kind(objects, "Certificate") == [] and of_kind(objects, "ReferenceGrant") == []
    assert "namespace" not in of_kind(objects, "HTTPRoute")[0]["spec"]["parentRefs"][0]


def test_the_engines_admit_the_route_gateway_namespace_only_when_it_calls_them() -> None:
    direct = {"httpRoute": {"host": "llm.example.com", "gatewayName": "public", "gatewayNamespace": "edge"}}
    def admitted(svc: LLMService) -> set[str]:
        policy = next(o for o in render(svc) if o["kind"] == "NetworkPolicy" and o["metadata"]["name"].endswith("-engine"))
        return {p["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
                for p in policy["spec"]["ingress"][0]["from"] if "namespaceSelector" in p and "podSelector" not in p}
    assert "edge" in admitted(spec("chat", direct))
    assert "edge" not in admitted(spec("chat", ROUTE))  # through kubellm-gateway: only it calls the engines


def test_one_ingress_and_one_route_certificate_for_one_secret() -> None:
    both = {**ROUTE, "ingress": {"host": "llm.example.com", "tls": {"secretName": "llm-tls", "issuer": {"name": "letsencrypt"}}}}
    assert len(of_kind(render(spec("chat", both)), "Certificate")) == 1


def test_two_services_claiming_one_host_are_refused_naming_both() -> None:
    first = spec("first", {"ingress": {"host": "llm.example.com"}})
    second = spec("second", {"httpRoute": {"host": "llm.example.com", "gatewayName": "g"}}, namespace="other")
    check_unique_hosts([first, spec("third", {"ingress": {"host": "other.example.com"}})])
    with pytest.raises(HostConflictError, match=r"'llm.example.com' is claimed by both LLMService team/first and other/second"):
        check_unique_hosts([first, second])
