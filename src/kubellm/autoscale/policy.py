"""The scaling policy: bounds, signal, target and windows, built from ``spec.scaling``."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from kubellm.autoscale.errors import AutoscaleError
from kubellm.spec.scaling import DEFAULT_TARGETS, Scaling

Signal = Literal["queueDepth", "kvCacheUsage", "runningRequests", "ttft", "gpuUtilization"]

# Signals that measure demand as a count of requests: their total over the service, plus
# requests the gateway holds, divided by the per-replica target gives the replicas needed.
# The others are per-replica averages, scaled by the ratio of observed to target (as HPA).
DEMAND_SIGNALS: frozenset[str] = frozenset({"queueDepth", "runningRequests"})


class ScalingPolicy(BaseModel):
    """How many replicas to run for a given load."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min_replicas: Annotated[int, Field(ge=0)] = 1
    max_replicas: Annotated[int, Field(ge=1)] = 1
    signal: Signal = "queueDepth"
    target: Annotated[float, Field(gt=0)] = DEFAULT_TARGETS["queueDepth"]
    scale_to_zero: bool = False
    idle_seconds: Annotated[float, Field(ge=0)] = 600.0
    scale_up_seconds: Annotated[float, Field(ge=0)] = 0.0
    scale_down_seconds: Annotated[float, Field(ge=0)] = 300.0
    tolerance: Annotated[float, Field(ge=0, lt=1)] = 0.1
    """Ratio changes within this band are ignored (HPA's default), so noise does not flap."""

    def model_post_init(self, context: Any, /) -> None:
        # Here rather than in a validator: pydantic would wrap our error in its own.
        if self.max_replicas < self.min_replicas:
            raise AutoscaleError(
                f"maxReplicas ({self.max_replicas}) is below minReplicas ({self.min_replicas}); "
                "raise maxReplicas or lower minReplicas"
            )

    @property
    def floor(self) -> int:
        """The fewest replicas kept while the service is in use."""
        return max(self.min_replicas, 1)

    @classmethod
    def from_spec(cls, scaling: Scaling) -> ScalingPolicy:
        """The policy a spec's ``scaling`` section describes."""
        return cls(
            min_replicas=scaling.min_replicas,
            max_replicas=scaling.effective_max,
            signal=scaling.signal,
            target=scaling.effective_target,
            scale_to_zero=scaling.scale_to_zero,
            idle_seconds=scaling.idle_seconds,
            scale_up_seconds=scaling.stabilization.scale_up_seconds,
            scale_down_seconds=scaling.stabilization.scale_down_seconds,
        )
