"""Gateway API and cert-manager objects of `spec.exposure`: an HTTPRoute, the Certificates
that keep TLS Secrets, and a ReferenceGrant letting a Gateway in another namespace read one.
(The Ingress is in network.py.) Also the host check across services: one host, one service.
"""

from __future__ import annotations

from collections.abc import Sequence

from kubellm.render.context import Obj, RenderContext
from kubellm.render.errors import HostConflictError
from kubellm.spec import LLMService
from kubellm.spec.exposure import Tls

GATEWAY_API = "gateway.networking.k8s.io"


def http_route(ctx: RenderContext) -> list[Obj]:
    exposure = ctx.service.spec.exposure
    route = exposure.http_route
    if route is None:
        return []
    parent: Obj = {"group": GATEWAY_API, "kind": "Gateway", "name": route.gateway_name}
    if route.gateway_namespace:
        parent["namespace"] = route.gateway_namespace
    if route.section_name:
        parent["sectionName"] = route.section_name
    backend = {"group": "", "kind": "Service", "name": route.backend_service or ctx.name, "port": exposure.service_port}
    rule = {"backendRefs": [backend], "matches": [{"path": {"type": "PathPrefix", "value": "/"}}]}
    spec = {"hostnames": [route.host], "parentRefs": [parent], "rules": [rule]}
    return [{"apiVersion": f"{GATEWAY_API}/v1", "kind": "HTTPRoute", "metadata": ctx.metadata(ctx.name, "ingress"), "spec": spec}]


def _certificate(ctx: RenderContext, host: str, tls: Tls) -> list[Obj]:
    if tls.issuer is None:
        return []
    issuer = {"group": "cert-manager.io", "kind": tls.issuer.kind, "name": tls.issuer.name}
    spec = {"dnsNames": [host], "issuerRef": issuer, "secretName": tls.secret_name}
    return [{"apiVersion": "cert-manager.io/v1", "kind": "Certificate", "metadata": ctx.metadata(tls.secret_name, "tls"), "spec": spec}]


def certificates(ctx: RenderContext) -> list[Obj]:
    """One Certificate per TLS Secret that names an issuer (an Ingress and a route sharing
    a Secret share the Certificate)."""
    exposure = ctx.service.spec.exposure
    found: dict[str, Obj] = {}
    for route in (exposure.ingress, exposure.http_route):
        if route is not None and route.tls is not None:
            for cert in _certificate(ctx, route.host, route.tls):
                found.setdefault(cert["metadata"]["name"], cert)
    return [found[name] for name in sorted(found)]


def reference_grant(ctx: RenderContext) -> list[Obj]:
    """Lets the route's Gateway, in another namespace, use the TLS Secret from this one."""
    route = ctx.service.spec.exposure.http_route
    if route is None or route.tls is None or not route.gateway_namespace or route.gateway_namespace == ctx.namespace:
        return []
    spec = {"from": [{"group": GATEWAY_API, "kind": "Gateway", "namespace": route.gateway_namespace}],
            "to": [{"group": "", "kind": "Secret", "name": route.tls.secret_name}]}
    return [{"apiVersion": f"{GATEWAY_API}/v1beta1", "kind": "ReferenceGrant",
             "metadata": ctx.metadata(f"{ctx.name}-tls", "tls"), "spec": spec}]


def exposure_objects(ctx: RenderContext) -> list[Obj]:
    return http_route(ctx) + certificates(ctx) + reference_grant(ctx)


def host_claims(services: Sequence[LLMService]) -> dict[str, list[str]]:
    """Host -> the services (``namespace/name``) whose exposure claims it, in the given order."""
    claims: dict[str, list[str]] = {}
    for svc in services:
        for host in svc.spec.exposure.hosts():
            claims.setdefault(host, []).append(f"{svc.metadata.namespace or 'default'}/{svc.metadata.name}")
    return claims


def check_unique_hosts(services: Sequence[LLMService]) -> None:
    """HostConflictError naming both services when two claim one host (a load balancer would
    send that host's clients to either of them)."""
    for host, owners in sorted(host_claims(services).items()):
        if len(owners) > 1:
            raise HostConflictError(f"exposure host {host!r} is claimed by both LLMService {owners[0]} and "
                                    f"{owners[1]}; give one of them another host")
