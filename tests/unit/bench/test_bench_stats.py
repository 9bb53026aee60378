from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from kubellm.bench.records import SLO, RequestRecord
from kubellm.bench.stats import Distribution, percentile, summarize

from .conftest import failed_record, ok_record


@given(st.lists(st.floats(min_value=-1e6, max_value=1e6), min_size=1, max_size=50),
       st.sampled_from([0, 50, 90, 95, 99, 100]))
def test_percentile_matches_numpy(values: list[float], q: int) -> None:
    assert percentile(values, q) == pytest.approx(float(np.percentile(values, q)), abs=1e-6)


def test_percentile_of_nothing_is_an_error() -> None:
    with pytest.raises(ValueError, match="no values"):
        percentile([], 50)


def test_distribution_skips_missing_values() -> None:
    dist = Distribution.of([1.0, None, 3.0])
    assert dist is not None and dist.count == 2 and dist.mean == 2.0 and dist.max == 3.0
    assert Distribution.of([None]) is None


def test_tpot_excludes_the_first_token() -> None:
    record = ok_record(0, ttft=0.2, tpot=0.05, tokens=5)
    assert record.tpot_s == pytest.approx(0.05)
    assert ok_record(0, tokens=1).tpot_s is None


def test_summary_figures_from_known_records() -> None:
    records = [ok_record(i, start=i * 0.5, ttft=0.1 * (i + 1), tpot=0.02, tokens=11) for i in range(4)]
    records.append(failed_record(4, "http_503", start=1.0))
    records.append(failed_record(5, "timeout", start=1.0))
    summary = summarize(records)
    assert (summary.requests, summary.completed, summary.failed) == (6, 4, 2)
    assert summary.error_rate == pytest.approx(2 / 6)
    assert summary.errors == {"http_503": 1, "timeout": 1}
    # first send at 0, last completion at 1.5 + 0.4 + 0.2
    assert summary.duration_s == pytest.approx(2.1)
    assert summary.request_rate == pytest.approx(4 / 2.1)
    assert summary.output_tokens_per_s == pytest.approx(44 / 2.1)
    assert summary.prompt_tokens_per_s == pytest.approx(80 / 2.1)
    assert summary.ttft is not None and summary.ttft.p50 == pytest.approx(0.25)
    assert summary.tpot is not None and summary.tpot.mean == pytest.approx(0.02)
    assert summary.itl is not None and summary.itl.count == 40
    assert summary.goodput is None and summary.send_lag is None


def test_goodput_counts_failures_as_misses_and_tightens_with_the_slo() -> None:
    records = [ok_record(i, ttft=0.1 * (i + 1), tpot=0.02) for i in range(8)]
    records += [failed_record(8), failed_record(9)]
    loose = summarize(records, SLO(ttft_s=10.0))
    tight = summarize(records, SLO(ttft_s=0.45))
    tighter = summarize(records, SLO(ttft_s=0.45, tpot_s=0.01))
    assert loose.goodput == pytest.approx(0.8)
    assert tight.goodput == pytest.approx(0.4)
    assert tighter.goodput == 0.0
    assert loose.goodput_rate == pytest.approx(8 / loose.duration_s)


def test_send_lag_is_start_minus_schedule() -> None:
    records = [RequestRecord(index=i, scheduled_s=i * 1.0, start_s=i * 1.0 + 0.002 * i, ttft_s=0.1,
                             e2e_s=0.2, output_tokens=2) for i in range(5)]
    summary = summarize(records)
    assert summary.send_lag is not None
    assert summary.send_lag.max == pytest.approx(0.008)
    assert summary.send_lag.p50 == pytest.approx(0.004)


def test_summarize_needs_records() -> None:
    with pytest.raises(ValueError, match="no records"):
        summarize([])
