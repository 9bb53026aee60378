"""The gateway's NetworkPolicy: who may call it, and what it may call.

In: clients in its namespace, the ingress controllers and Gateway API gateways the
services' exposure names, and Prometheus (metrics share the API port). Out: DNS, the
engines of its namespace on their ports, the OTLP collector, and the Kubernetes API
(443/6443: the API server is not a pod a policy can select, so only the ports narrow it).
The engines' own policy (render/security.py) admits only the gateway's pods and Prometheus.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from kubellm.render.context import Obj
from kubellm.render.kvevents import kv_events_ports
from kubellm.render.security import DNS_EGRESS, ENGINE_COMPONENTS
from kubellm.spec import LLMService

if TYPE_CHECKING:
    from kubellm.render.gateway import GatewaySettings

API_SERVER_PORTS = (443, 6443)


def _namespace(name: str) -> Obj:
    return {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": name}}}


def _tcp(ports: Sequence[int]) -> list[Obj]:
    return [{"port": p, "protocol": "TCP"} for p in sorted(set(ports))]


def client_namespaces(services: Sequence[LLMService], prometheus_namespace: str) -> list[str]:
    """Namespaces outside the gateway's whose pods may call it."""
    found = {prometheus_namespace}
    for svc in services:
        if svc.spec.scaling.backend == "operator":  # it reads the gateway's held and in-flight gauges
            found.add(svc.spec.security.network_policy.operator_namespace)
        exposure = svc.spec.exposure
        if exposure.ingress is not None:
            found.add(exposure.ingress.controller_namespace)
        if exposure.http_route is not None and exposure.http_route.gateway_namespace:
            found.add(exposure.http_route.gateway_namespace)
    return sorted(found)


def otel_port(services: Sequence[LLMService]) -> list[int]:
    ports = []
    for svc in services:
        endpoint = svc.spec.observability.otel_endpoint
        if endpoint:
            port = endpoint.rsplit(":", 1)[-1].split("/")[0]
            ports.append(int(port) if port.isdigit() else 4317)
    return ports


def gateway_egress(services: Sequence[LLMService]) -> list[Obj]:
    engines: Obj = {"podSelector": {
        "matchExpressions": [{"key": "app.kubernetes.io/component", "operator": "In", "values": ENGINE_COMPONENTS}],
        "matchLabels": {"app.kubernetes.io/name": "llmservice"}}}
    rules: list[Obj] = [DNS_EGRESS, {"ports": _tcp(API_SERVER_PORTS)}]
    if services:
        # the API ports, and the KV-event ports of services routed precisely
        ports = [s.spec.engine.port for s in services] + [p for s in services for p in kv_events_ports(s)]
        rules.append({"ports": _tcp(ports), "to": [engines]})
    if otel_port(services):
        rules.append({"ports": _tcp(otel_port(services))})
    return rules


def gateway_network_policy(metadata: Obj, selector: dict[str, str], services: Sequence[LLMService],
                           settings: GatewaySettings) -> Obj:
    peers: list[Obj] = [{"podSelector": {}}] + [_namespace(n) for n in client_namespaces(services, settings.prometheus_namespace)]
    ingress = [{"from": peers, "ports": _tcp([settings.port])}]
    spec = {"egress": gateway_egress(services), "ingress": ingress, "podSelector": {"matchLabels": dict(selector)},
            "policyTypes": ["Ingress", "Egress"]}
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": metadata, "spec": spec}
