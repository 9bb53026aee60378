"""How new versions roll out: `spec.rollout`."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from kubellm.spec.base import SpecModel
from kubellm.spec.types import Percent

IntOrPercent = Annotated[str, Field(pattern=r"^([0-9]+|[0-9]{1,2}%|100%)$")]


class Canary(SpecModel):
    """A second model version that receives part of the traffic."""

    uri: str | None = None
    """Model URI of the canary version (strategy gatewayCanary)."""
    served_name: str | None = None
    """Served name of the canary (default: the main served name, so clients see one model)."""
    weight: Percent = 10
    """Percent of traffic sent to the canary."""
    steps: tuple[Percent, ...] = ()
    """Weight steps: Argo Rollouts' (argoCanary; default [weight, 50, 100]) or the operator's (gatewayCanary; default [weight], each step once the canary is ready)."""
    pause_seconds: Annotated[int, Field(ge=0)] = 600
    """Seconds at each step before the next (Argo Rollouts, or the operator for gatewayCanary)."""


class Rollout(SpecModel):
    """Rolling update by default; a canary through Argo Rollouts or the gateway."""

    strategy: Literal["rollingUpdate", "argoCanary", "gatewayCanary"] = "rollingUpdate"
    """rollingUpdate (Deployment), argoCanary (Argo Rollouts Rollout with weight steps),
    gatewayCanary (a second Deployment for canary.uri, weighted by the kubellm gateway)."""
    max_surge: IntOrPercent = "1"
    """Extra pods during an update (GPU clusters rarely have spare GPUs: keep it small)."""
    max_unavailable: IntOrPercent = "0"
    """Pods that may be down during an update."""
    canary: Canary | None = None
    """Canary settings (argoCanary, gatewayCanary)."""
