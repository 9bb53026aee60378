"""Pass/fail thresholds for ``kubellm check``, and judging a run's summary by them (pure)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from kubellm.bench.stats import Summary


class Thresholds(BaseModel):
    """The defaults are the issue's: TTFT p50 < 500 ms, p99 < 2 s, errors < 0.1%."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ttft_p50_ms: float = Field(default=500.0, gt=0)
    ttft_p99_ms: float = Field(default=2000.0, gt=0)
    tpot_p99_ms: float | None = Field(default=None, gt=0)
    max_error_rate: float = Field(default=0.001, ge=0, le=1)
    min_output_tokens_per_s: float = Field(default=1.0, ge=0)

    @classmethod
    def from_slo(cls, slo: Any) -> Thresholds:
        """From an LLMService ``spec.slo`` (kubellm.spec.slo.Slo)."""
        return cls(
            ttft_p50_ms=slo.ttft_p50_ms,
            ttft_p99_ms=slo.ttft_p99_ms,
            tpot_p99_ms=slo.tpot_ms,
            max_error_rate=slo.max_error_rate,
            min_output_tokens_per_s=slo.min_output_tokens_per_second,
        )


@dataclass(frozen=True)
class Verdict:
    """One row of the check table."""

    name: str
    expected: str
    measured: str
    passed: bool


def _ms(value: float | None) -> str:
    return "none measured" if value is None else f"{value:.1f} ms"


def _upper(name: str, measured: float | None, limit: float, fmt: Callable[[float | None], str]) -> Verdict:
    passed = measured is not None and measured < limit
    return Verdict(name, f"< {fmt(limit)}", fmt(measured), passed)


def judge(summary: Summary, thresholds: Thresholds) -> list[Verdict]:
    """A verdict per threshold; a latency nobody measured (all requests failed) fails."""
    ttft_p50 = summary.ttft.p50 * 1000 if summary.ttft else None
    ttft_p99 = summary.ttft.p99 * 1000 if summary.ttft else None
    verdicts = [
        _upper("TTFT p50", ttft_p50, thresholds.ttft_p50_ms, _ms),
        _upper("TTFT p99", ttft_p99, thresholds.ttft_p99_ms, _ms),
    ]
    if thresholds.tpot_p99_ms is not None:
        tpot_p99 = summary.tpot.p99 * 1000 if summary.tpot else None
        verdicts.append(_upper("TPOT p99", tpot_p99, thresholds.tpot_p99_ms, _ms))
    verdicts.append(
        Verdict(
            "error rate",
            f"<= {thresholds.max_error_rate:.2%}",
            f"{summary.error_rate:.2%} ({summary.failed}/{summary.requests})",
            summary.error_rate <= thresholds.max_error_rate,
        )
    )
    verdicts.append(
        Verdict(
            "output tokens/s",
            f">= {thresholds.min_output_tokens_per_s:g}",
            f"{summary.output_tokens_per_s:.1f}",
            summary.output_tokens_per_s >= thresholds.min_output_tokens_per_s,
        )
    )
    return verdicts
