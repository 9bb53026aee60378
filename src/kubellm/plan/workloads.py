"""Built-in traces: a diurnal day with bursts, a flash crowd, a long idle tail (pure, seeded).

Arrivals are a Poisson process whose rate follows the trace's shape (drawn by thinning).
Lengths are log-normal around the medians of the Azure LLM inference trace 2023,
conversation service (Patel et al., "Splitwise", ISCA 2024, section III: median prompt
1020 tokens, median output 129 tokens). The trace publishes medians and CDFs, not a fitted
law: the log-normal shape and its spreads (``PROMPT_SIGMA``, ``OUTPUT_SIGMA``) are our
assumption, chosen so the 90th percentiles land near the published CDFs' (about 4x the
median for prompts, 3x for outputs). The diurnal shape (trough at 40 % of the peak, peak
mid-afternoon) follows the daily curve of the same trace and of BurstGPT (Wang et al.,
2024, fig. 3: a weekday peak about 2.5x its night trough); the burst sizes and the flash
crowd's 10x are the issue's stress cases, not measurements.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass

from kubellm.plan.tracefile import TraceRequest

PROMPT_MEDIAN, OUTPUT_MEDIAN = 1020, 129  # Azure LLM inference trace 2023, conversation
PROMPT_SIGMA, OUTPUT_SIGMA = 1.1, 0.85  # assumed spreads (see the module docstring)
DAY = 86_400.0

RateFn = Callable[[float], float]


@dataclass(frozen=True, slots=True)
class Workload:
    """A named rate curve over ``duration`` seconds, peaking at ``peak`` requests/s."""

    name: str
    duration: float
    peak: float
    rate: RateFn


def diurnal(peak: float = 12.0, duration: float = DAY, seed: int = 7) -> Workload:
    """A day: 40 %..100 % of *peak* over 24 h (peak at 15:00), plus six 5-minute 2x bursts."""
    rng = random.Random(seed)
    bursts = sorted(rng.uniform(0.0, duration - 300.0) for _ in range(6))

    def rate(t: float) -> float:
        base = peak * (0.7 - 0.3 * math.cos(2 * math.pi * (t / DAY - 0.125)))  # trough 03:00
        burst = any(b <= t < b + 300.0 for b in bursts)
        return base * (2.0 if burst else 1.0)
    return Workload("diurnal", duration, peak, rate)


def flash_crowd(base: float = 1.5, factor: float = 10.0, duration: float = 3 * 3600.0) -> Workload:
    """*base* req/s, then *factor* x within one minute at 1 h, held 20 min, decaying over 20 min."""
    def rate(t: float) -> float:
        start, ramp, hold, decay = 3600.0, 60.0, 1200.0, 1200.0
        if t < start:
            return base
        if t < start + ramp:
            return base * (1 + (factor - 1) * (t - start) / ramp)
        if t < start + ramp + hold:
            return base * factor
        left = max(0.0, 1 - (t - start - ramp - hold) / decay)
        return base * (1 + (factor - 1) * left)
    return Workload("flash-crowd", duration, base * factor, rate)


def idle_tail(busy: float = 3.0, duration: float = 8 * 3600.0) -> Workload:
    """*busy* req/s for 1 h, then a sparse tail: one request every ~40 min (scale to zero pays)."""
    def rate(t: float) -> float:
        return busy if t < 3600.0 else 1 / 2400.0
    return Workload("idle-tail", duration, busy, rate)


BUILTIN: dict[str, Callable[[], Workload]] = {"diurnal": diurnal, "flash-crowd": flash_crowd, "idle-tail": idle_tail}


def generate(workload: Workload, seed: int = 1, max_len: int = 8192) -> list[TraceRequest]:
    """Requests of *workload*: Poisson arrivals by thinning, log-normal lengths capped at *max_len*."""
    rng = random.Random(seed)
    out: list[TraceRequest] = []
    t, peak = 0.0, workload.peak * 2.0  # bursts may double the peak: thin against twice it
    mu_p, mu_o = math.log(PROMPT_MEDIAN), math.log(OUTPUT_MEDIAN)
    while True:
        t += rng.expovariate(peak)
        if t >= workload.duration:
            return out
        if rng.random() * peak > workload.rate(t):
            continue
        prompt = min(max_len // 2, max(1, int(rng.lognormvariate(mu_p, PROMPT_SIGMA))))
        output = min(max_len // 2, max(1, int(rng.lognormvariate(mu_o, OUTPUT_SIGMA))))
        out.append(TraceRequest(t, prompt, output))
