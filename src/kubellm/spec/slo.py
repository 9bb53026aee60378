"""Service level objectives: `spec.slo` (alerts and `kubellm check` read them)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from kubellm.spec.base import SpecModel

PositiveMs = Annotated[float, Field(gt=0)]


class Slo(SpecModel):
    """Latency, error and throughput objectives."""

    ttft_p50_ms: PositiveMs = 500.0
    """Median time to first token."""
    ttft_p99_ms: PositiveMs = 2000.0
    """99th-percentile time to first token."""
    tpot_ms: PositiveMs = 100.0
    """Time per output token (p99)."""
    max_error_rate: Annotated[float, Field(ge=0, le=1)] = 0.01
    """Fraction of requests that may fail."""
    min_output_tokens_per_second: Annotated[float, Field(ge=0)] = 0.0
    """Aggregate output tokens per second the service must sustain (0: no objective)."""
