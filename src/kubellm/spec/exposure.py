"""How clients reach the service: `spec.exposure`."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from kubellm.spec.base import SpecModel
from kubellm.spec.types import KubeName


Host = Annotated[str, Field(pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$", max_length=253)]


class Issuer(SpecModel):
    """A cert-manager issuer: kubellm renders a Certificate that writes the TLS Secret."""

    name: KubeName
    """Name of the Issuer or ClusterIssuer."""
    kind: Literal["ClusterIssuer", "Issuer"] = "ClusterIssuer"
    """Kind of the issuer (an Issuer must be in the service's namespace)."""


class Tls(SpecModel):
    """TLS: a Secret you provide, or one cert-manager keeps (with an issuer)."""

    secret_name: KubeName
    """Secret of type kubernetes.io/tls with the certificate."""
    issuer: Issuer | None = None
    """cert-manager issuer; set, kubellm renders a Certificate for the host into secretName."""


class Ingress(SpecModel):
    """An Ingress in front of the Service."""

    host: Host
    """DNS name clients use."""
    class_name: KubeName = "nginx"
    """IngressClass."""
    tls: Tls | None = None
    """TLS settings; without them the Ingress serves plain HTTP (validate warns)."""
    annotations: dict[str, str] = {}
    """Extra annotations for the ingress controller."""
    backend_service: KubeName | None = None
    """Service the Ingress sends traffic to (default: the service's own). Point it at the
    kubellm gateway's Service for API keys, canaries and disaggregated routing."""
    controller_namespace: KubeName = "ingress-nginx"
    """Namespace of the ingress controller pods, allowed in by the NetworkPolicy."""


class HttpRoute(SpecModel):
    """A Gateway API HTTPRoute attached to a Gateway your platform runs."""

    host: Host
    """DNS name clients use (the route's hostname)."""
    gateway_name: KubeName
    """The Gateway the route attaches to."""
    gateway_namespace: KubeName | None = None
    """Namespace of that Gateway and of its data-plane pods (default: the service's), allowed in
    by the NetworkPolicy."""
    section_name: KubeName | None = None
    """The Gateway listener to attach to (default: every listener that admits the route)."""
    backend_service: KubeName | None = None
    """Service the route sends traffic to (default: the service's own). Set kubellm-gateway
    for API keys, canaries and disaggregated routing."""
    tls: Tls | None = None
    """TLS on the Gateway's listener: with an issuer, kubellm renders the Certificate; when the
    Gateway is in another namespace, a ReferenceGrant lets it read the Secret."""


class Exposure(SpecModel):
    """Service, and optionally an Ingress and/or a Gateway API HTTPRoute."""

    service_type: Literal["ClusterIP", "LoadBalancer", "NodePort"] = "ClusterIP"
    """Type of the Service."""
    service_port: Annotated[int, Field(ge=1, le=65535)] = 80
    """Port of the Service (forwards to the engine port)."""
    ingress: Ingress | None = None
    """Ingress settings (none: no Ingress)."""
    http_route: HttpRoute | None = None
    """Gateway API HTTPRoute settings (none: no HTTPRoute)."""

    def hosts(self) -> list[str]:
        """The DNS names this exposure claims."""
        return sorted({r.host for r in (self.ingress, self.http_route) if r is not None})
