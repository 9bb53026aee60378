"""What an autoscaler can observe on one tick of the fleet simulation (plain data)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Observation:
    now: float
    replicas: int
    """Replicas that exist, starting ones included."""
    ready: int
    """Replicas serving."""
    waiting: float
    """vllm:num_requests_waiting, summed over ready replicas."""
    running: float
    """vllm:num_requests_running, summed."""
    kv_usage: float
    """vllm:kv_cache_usage_perc, mean over ready replicas (0..1)."""
    gpu_util: float
    """DCGM_FI_DEV_GPU_UTIL, mean over ready replicas since the last tick (percent)."""
    held: int
    """Requests the gateway holds because no replica is ready."""
    rate_short: float
    """Arrivals per second over the last 30 s (the gateway counts them)."""
    rate_long: float
    """Arrivals per second over the last 5 min."""

    @property
    def in_flight(self) -> float:
        """Requests in the system: held at the gateway, waiting or running in engines."""
        return self.held + self.waiting + self.running
