"""What the autoscaler observes on one tick, summed or averaged over ready replicas.

Sum-type signals (waiting, running, held) are totals over the service; kv_usage and
ttft are averages over ready replicas. ``None`` means "not observed this tick" (no
replica scraped yet): the policy then holds its course rather than guess.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Signals:
    replicas: int
    """Replicas that exist now, starting ones included (the baseline of a change)."""
    ready: int
    """Replicas serving (scraped); averages are over these."""
    waiting: float | None = 0.0
    """vllm:num_requests_waiting, summed."""
    running: float | None = 0.0
    """vllm:num_requests_running, summed."""
    kv_usage: float | None = 0.0
    """vllm:kv_cache_usage_perc, mean over ready replicas (0..1)."""
    ttft_p90: float | None = None
    """p90 time to first token in seconds over the last interval."""
    gpu_util: float | None = None
    """Mean accelerator utilization, percent."""
    held: int = 0
    """Requests the gateway holds because no replica is ready (scale from zero)."""
    in_flight: int = 0
    """Requests in flight through the gateway (proof of activity even without metrics)."""

    @property
    def active(self) -> bool:
        """Whether anything is being asked of the service right now."""
        return self.held > 0 or self.in_flight > 0 or (self.waiting or 0) > 0 or (self.running or 0) > 0
