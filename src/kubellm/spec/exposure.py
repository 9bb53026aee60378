"""How clients reach the service: `spec.exposure`."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from kubellm.spec.base import SpecModel
from kubellm.spec.types import KubeName


class Tls(SpecModel):
    """TLS for the Ingress."""

    secret_name: KubeName
    """Secret of type kubernetes.io/tls with the certificate (e.g. issued by cert-manager)."""


class Ingress(SpecModel):
    """An Ingress in front of the Service."""

    host: Annotated[str, Field(pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")]
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


class Exposure(SpecModel):
    """Service and optional Ingress."""

    service_type: Literal["ClusterIP", "LoadBalancer", "NodePort"] = "ClusterIP"
    """Type of the Service."""
    service_port: Annotated[int, Field(ge=1, le=65535)] = 80
    """Port of the Service (forwards to the engine port)."""
    ingress: Ingress | None = None
    """Ingress settings (none: no Ingress)."""
