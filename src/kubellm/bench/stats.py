"""Aggregation of request records: percentiles, throughput, error rate and goodput (pure)."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence

from pydantic import BaseModel, ConfigDict

from kubellm.bench.records import SLO, RequestRecord

PERCENTILES = (50, 90, 95, 99)


def percentile(values: Sequence[float], q: float) -> float:
    """The *q*-th percentile (0-100) with linear interpolation, as numpy's default."""
    if not values:
        raise ValueError("percentile of no values")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


class Distribution(BaseModel):
    """Summary of one latency in seconds."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    count: int
    mean: float
    p50: float
    p90: float
    p95: float
    p99: float
    max: float

    @classmethod
    def of(cls, values: Iterable[float | None]) -> Distribution | None:
        present = [v for v in values if v is not None]
        if not present:
            return None
        points = {f"p{q}": percentile(present, q) for q in PERCENTILES}
        return cls(count=len(present), mean=sum(present) / len(present), max=max(present), **points)


class Summary(BaseModel):
    """The figures of one run."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    requests: int
    completed: int
    failed: int
    error_rate: float
    errors: dict[str, int]
    duration_s: float
    request_rate: float
    output_tokens_per_s: float
    prompt_tokens_per_s: float
    ttft: Distribution | None
    tpot: Distribution | None
    itl: Distribution | None
    e2e: Distribution | None
    send_lag: Distribution | None
    slo: SLO | None
    goodput: float | None
    goodput_rate: float | None


def summarize(records: Sequence[RequestRecord], slo: SLO | None = None) -> Summary:
    """Aggregate *records*; goodput counts failed requests as missing the SLO."""
    if not records:
        raise ValueError("no records to summarize")
    ok = [r for r in records if r.ok]
    duration = _duration(records)
    good = sum(1 for r in records if slo.met_by(r)) if slo else None
    return Summary(
        requests=len(records),
        completed=len(ok),
        failed=len(records) - len(ok),
        error_rate=(len(records) - len(ok)) / len(records),
        errors=dict(Counter(r.error for r in records if r.error is not None)),
        duration_s=duration,
        request_rate=_per_s(len(ok), duration),
        output_tokens_per_s=_per_s(sum(r.output_tokens or 0 for r in ok), duration),
        prompt_tokens_per_s=_per_s(sum(r.prompt_tokens or 0 for r in ok), duration),
        ttft=Distribution.of(r.ttft_s for r in ok),
        tpot=Distribution.of(r.tpot_s for r in ok),
        itl=Distribution.of(gap for r in ok for gap in r.itl_s),
        e2e=Distribution.of(r.e2e_s for r in ok),
        send_lag=Distribution.of(_lag(r) for r in records),
        slo=slo,
        goodput=None if good is None else good / len(records),
        goodput_rate=None if good is None else _per_s(good, duration),
    )


def _duration(records: Sequence[RequestRecord]) -> float:
    """From the first send to the last completion (or last send, if nothing completed)."""
    first = min(r.start_s for r in records)
    last = max(r.end_s if r.end_s is not None else r.start_s for r in records)
    return last - first


def _per_s(amount: float, duration: float) -> float:
    return amount / duration if duration > 0 else 0.0


def _lag(record: RequestRecord) -> float | None:
    """How late an open-loop request went out against its schedule."""
    return None if record.scheduled_s is None else record.start_s - record.scheduled_s
