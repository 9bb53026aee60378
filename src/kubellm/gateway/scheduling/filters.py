"""Filters: drop endpoints that must not get the request."""

from __future__ import annotations

from collections.abc import Sequence

from kubellm.gateway.endpoint import Endpoint
from kubellm.gateway.scheduling.request import RoutingRequest


def healthy(req: RoutingRequest, eps: Sequence[Endpoint]) -> list[Endpoint]:
    """Endpoints that pass health checks and whose circuit breaker lets a request through."""
    return [e for e in eps if e.routable()]


def lora_capable(req: RoutingRequest, eps: Sequence[Endpoint]) -> list[Endpoint]:
    """With an adapter requested, prefer endpoints that have it active; else any may load it."""
    if req.lora is None:
        return list(eps)
    loaded = [e for e in eps if req.lora in e.loras]
    return loaded or list(eps)
