"""Replica counts and autoscaling: `spec.scaling` (and each disaggregated role's)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from kubellm.spec.base import SpecModel
from kubellm.spec.types import Seconds

ScalingSignal = Literal["queueDepth", "kvCacheUsage", "runningRequests", "ttft", "gpuUtilization"]
ScalingBackend = Literal["keda", "hpa", "operator"]

# The Prometheus series each signal reads (vLLM names; DCGM for GPU utilization).
SIGNAL_METRICS: dict[str, str] = {
    "queueDepth": "vllm:num_requests_waiting",
    "kvCacheUsage": "vllm:kv_cache_usage_perc",
    "runningRequests": "vllm:num_requests_running",
    "ttft": "vllm:time_to_first_token_seconds",
    "gpuUtilization": "DCGM_FI_DEV_GPU_UTIL",
}

# Targets that suit each signal when the spec gives none (per replica).
DEFAULT_TARGETS: dict[str, float] = {
    "queueDepth": 5.0,
    "kvCacheUsage": 0.8,
    "runningRequests": 32.0,
    "ttft": 0.5,
    "gpuUtilization": 80.0,
}


class Stabilization(SpecModel):
    """How long a scaling recommendation must hold before it is acted on."""

    scale_up_seconds: Seconds = 0
    """Scale-up stabilization window."""
    scale_down_seconds: Seconds = 300
    """Scale-down stabilization window; long, because engines are slow to start."""


class Scaling(SpecModel):
    """Replicas and autoscaling. maxReplicas above minReplicas (or scaleToZero) turns
    autoscaling on."""

    min_replicas: Annotated[int, Field(ge=1, le=1000)] = 1
    """Replicas kept when idle (see scaleToZero for zero)."""
    max_replicas: Annotated[int, Field(ge=1, le=1000)] | None = None
    """Upper bound; default: minReplicas (no autoscaling)."""
    signal: ScalingSignal = "queueDepth"
    """Metric that drives scaling: queueDepth (vllm:num_requests_waiting), kvCacheUsage,
    runningRequests, ttft (p90 time to first token, seconds), gpuUtilization (percent)."""
    target: Annotated[float, Field(gt=0)] | None = None
    """Target value of the signal per replica (default per signal: 5 waiting requests, 0.8
    KV-cache use, 32 running, 0.5 s TTFT, 80 % GPU)."""
    scale_to_zero: bool = False
    """Scale to zero replicas when idle (backend keda or operator); the gateway holds requests meanwhile."""
    idle_seconds: Seconds = 600
    """With scaleToZero: seconds without requests before going to zero."""
    stabilization: Stabilization = Stabilization()
    """Stabilization windows."""
    backend: ScalingBackend = "keda"
    """keda (ScaledObject), hpa (HorizontalPodAutoscaler + Prometheus Adapter rule), or
    operator (the operator scales the Deployment itself with kubellm's policy, the one local
    mode uses, from the engines' /metrics: no KEDA, HPA or Prometheus needed)."""
    polling_interval_seconds: Annotated[int, Field(ge=1, le=3600)] = 15
    """How often the signal is read."""
    prometheus_url: str = "http://prometheus-operated.monitoring.svc:9090"
    """Prometheus that KEDA queries."""

    @property
    def effective_max(self) -> int:
        return self.max_replicas if self.max_replicas is not None else self.min_replicas

    @property
    def enabled(self) -> bool:
        return self.effective_max > self.min_replicas or self.scale_to_zero

    @property
    def effective_target(self) -> float:
        return self.target if self.target is not None else DEFAULT_TARGETS[self.signal]

    @property
    def metric(self) -> str:
        return SIGNAL_METRICS[self.signal]
