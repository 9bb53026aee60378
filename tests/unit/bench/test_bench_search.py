from __future__ import annotations

import pytest

from kubellm.bench.errors import ThresholdError
from kubellm.bench.records import SLO, LoadPoint
from kubellm.bench.results import RunResult
from kubellm.bench.search import find_max_rate, sweep
from kubellm.bench.stats import summarize

from .conftest import ok_record


def runner_with_capacity(capacity: float, tried: list[float]):  # type: ignore[no-untyped-def]
    """A stand-in for the driver: TTFT is fine up to *capacity* req/s, then blows up."""

    async def run(load: LoadPoint) -> RunResult:
        tried.append(load.value)
        ttft = 0.1 if load.value <= capacity else 5.0
        records = [ok_record(i, ttft=ttft) for i in range(10)]
        return RunResult(load=load, summary=summarize(records, SLO(ttft_s=1.0)), records=records)

    return run


async def test_search_brackets_the_capacity() -> None:
    tried: list[float] = []
    outcome, runs = await find_max_rate(runner_with_capacity(7.3, tried), low=1, high=17, min_goodput=0.9, steps=5)
    assert tried[:2] == [17, 1]
    assert outcome.best_rate is not None
    assert 7.3 - 16 / 2**5 <= outcome.best_rate <= 7.3
    assert len(runs) == 7 and "lies in" in outcome.note


async def test_search_stops_when_the_upper_bound_meets_the_slo() -> None:
    tried: list[float] = []
    outcome, _ = await find_max_rate(runner_with_capacity(100, tried), low=1, high=10, min_goodput=0.9)
    assert outcome.best_rate == 10 and tried == [10] and "raise it" in outcome.note


async def test_search_reports_none_when_even_the_lower_bound_fails() -> None:
    tried: list[float] = []
    outcome, _ = await find_max_rate(runner_with_capacity(0.5, tried), low=1, high=10, min_goodput=0.9)
    assert outcome.best_rate is None and tried == [10, 1]


@pytest.mark.parametrize(("low", "high", "goodput", "fragment"), [
    (5, 2, 0.9, "low < high"), (0, 2, 0.9, "low < high"), (1, 2, 1.5, "share in")])
async def test_search_rejects_nonsense_bounds(low: float, high: float, goodput: float, fragment: str) -> None:
    with pytest.raises(ThresholdError, match=fragment):
        await find_max_rate(runner_with_capacity(1, []), low=low, high=high, min_goodput=goodput)


async def test_sweep_runs_points_in_order() -> None:
    tried: list[float] = []
    points = [LoadPoint(mode="rate", value=v) for v in (4, 1, 2)]
    runs = await sweep(points, runner_with_capacity(3, tried))
    assert tried == [4, 1, 2] and [r.load.value for r in runs] == [4, 1, 2]
