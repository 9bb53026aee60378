"""Seeded arrival schedules for open-loop runs: offsets in seconds from the run's start."""

from __future__ import annotations

import random

from kubellm.bench.errors import WorkloadError


def poisson_offsets(rate: float, count: int, seed: int) -> list[float]:
    """Arrival times of a Poisson process of *rate* requests/s: exponential gaps, first at 0."""
    if rate <= 0:
        raise WorkloadError(f"request rate must be above 0 requests/s, got {rate}")
    rng = random.Random(seed)
    offsets = [0.0]
    for _ in range(count - 1):
        offsets.append(offsets[-1] + rng.expovariate(rate))
    return offsets[:count]


def constant_offsets(rate: float, count: int) -> list[float]:
    """Evenly spaced arrivals at *rate* requests/s."""
    if rate <= 0:
        raise WorkloadError(f"request rate must be above 0 requests/s, got {rate}")
    return [i / rate for i in range(count)]
