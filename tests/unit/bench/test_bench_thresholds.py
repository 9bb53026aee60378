from __future__ import annotations

import pytest
from pydantic import ValidationError

from kubellm.bench.stats import summarize
from kubellm.bench.thresholds import Thresholds, judge

from .conftest import failed_record, ok_record


def by_name(verdicts):  # type: ignore[no-untyped-def]
    return {v.name: v for v in verdicts}


def test_a_fast_clean_run_passes_the_defaults() -> None:
    summary = summarize([ok_record(i, start=i * 0.1, ttft=0.05) for i in range(20)])
    verdicts = judge(summary, Thresholds())
    assert [v.name for v in verdicts] == ["TTFT p50", "TTFT p99", "error rate", "output tokens/s"]
    assert all(v.passed for v in verdicts)


def test_each_threshold_fails_on_its_own() -> None:
    records = [ok_record(i, ttft=0.6 if i < 15 else 2.5) for i in range(20)] + [failed_record(20)]
    verdicts = by_name(judge(summarize(records), Thresholds(tpot_p99_ms=5, min_output_tokens_per_s=1e6)))
    assert {name for name, v in verdicts.items() if not v.passed} == {
        "TTFT p50", "TTFT p99", "TPOT p99", "error rate", "output tokens/s"}
    assert verdicts["TTFT p50"].measured == "600.0 ms" and verdicts["TTFT p50"].expected == "< 500.0 ms"
    assert verdicts["error rate"].measured.startswith("4.76% (1/21)")


def test_all_failed_run_fails_latency_checks_for_lack_of_data() -> None:
    verdicts = by_name(judge(summarize([failed_record(i) for i in range(3)]), Thresholds()))
    assert not verdicts["TTFT p50"].passed and verdicts["TTFT p50"].measured == "none measured"


def test_thresholds_from_the_spec_slo() -> None:
    from kubellm.spec.slo import Slo

    slo = Slo(ttft_p50_ms=100, ttft_p99_ms=300, tpot_ms=20, max_error_rate=0.05,
              min_output_tokens_per_second=50)
    assert Thresholds.from_slo(slo) == Thresholds(ttft_p50_ms=100, ttft_p99_ms=300, tpot_p99_ms=20,
                                                  max_error_rate=0.05, min_output_tokens_per_s=50)


def test_nonsense_thresholds_are_rejected() -> None:
    with pytest.raises(ValidationError):
        Thresholds(max_error_rate=2)
    with pytest.raises(ValidationError):
        Thresholds(ttft_p50_ms=-1)
