"""Figures of one fleet run (pure): SLO attainment, latency percentiles, GPU-hours, cost."""

from __future__ import annotations

import math
from dataclasses import dataclass

from kubellm.plan.fleet import FleetRun
from kubellm.spec.slo import Slo


@dataclass(frozen=True, slots=True)
class Prices:
    """Price of one accelerator-hour; the defaults are assumptions (H100, 2026 list prices
    of the large clouds run about 3 to 7 USD on demand, spot about 40 % of that)."""

    on_demand: float = 4.0
    spot: float = 1.6


@dataclass(frozen=True, slots=True)
class Summary:
    policy: str
    requests: int
    attainment: float  # share of requests with TTFT <= slo.ttftP99Ms and TPOT <= slo.tpotMs
    ttft_p50: float
    ttft_p99: float
    tpot_p99: float
    gpu_hours: float
    cost_on_demand: float
    cost_spot: float
    cold_starts: int
    held: int
    max_hold: float
    peak_replicas: int
    unfinished: int


def percentile(values: list[float], q: float) -> float:
    """The *q* quantile (0..1) by the nearest-rank method; NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def latencies(run: FleetRun) -> tuple[list[float], list[float], int]:
    """TTFT and TPOT of each finished request (seconds), and how many did not finish."""
    ttft, tpot, unfinished = [], [], 0
    for req, first, done in zip(run.trace, run.results.first, run.results.done):
        if math.isnan(done):
            unfinished += 1
            continue
        ttft.append(first - req.at)
        tpot.append((done - first) / (req.output_tokens - 1) if req.output_tokens > 1 else 0.0)
    return ttft, tpot, unfinished


def summarize(name: str, run: FleetRun, slo: Slo, prices: Prices = Prices()) -> Summary:
    ttft, tpot, unfinished = latencies(run)
    ttft_ok, tpot_ok = slo.ttft_p99_ms / 1000, slo.tpot_ms / 1000
    met = sum(1 for a, b in zip(ttft, tpot) if a <= ttft_ok and b <= tpot_ok)
    gpu_hours = run.node_seconds * run.gpus_per_replica / 3600
    return Summary(
        policy=name, requests=len(run.trace), attainment=met / len(run.trace) if run.trace else 1.0,
        ttft_p50=percentile(ttft, 0.5), ttft_p99=percentile(ttft, 0.99), tpot_p99=percentile(tpot, 0.99),
        gpu_hours=gpu_hours, cost_on_demand=gpu_hours * prices.on_demand, cost_spot=gpu_hours * prices.spot,
        cold_starts=run.cold_starts, held=len(run.hold_times), max_hold=max(run.hold_times, default=0.0),
        peak_replicas=max((s.replicas for s in run.samples), default=0), unfinished=unfinished)


HEADER = ("| policy | SLO attainment | TTFT p50 / p99 (s) | TPOT p99 (ms) | GPU-hours | cost on-demand / spot (USD) "
          "| cold starts | held (max s) | peak replicas |\n|---|---|---|---|---|---|---|---|---|")


def row(s: Summary) -> str:
    return (f"| {s.policy} | {s.attainment:.2%} | {s.ttft_p50:.2f} / {s.ttft_p99:.2f} | {1000 * s.tpot_p99:.0f} "
            f"| {s.gpu_hours:.1f} | {s.cost_on_demand:.0f} / {s.cost_spot:.0f} | {s.cold_starts} "
            f"| {s.held} ({s.max_hold:.0f}) | {s.peak_replicas} |")


def table(summaries: list[Summary]) -> str:
    return "\n".join([HEADER, *(row(s) for s in summaries)])
