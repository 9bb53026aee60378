"""The goodput-maximising rate search against a simulator whose capacity is limited.

The simulator runs its vLLM cost model (``tiny`` profile) with only 2 sequences at a time,
in a process of its own, so TTFT climbs once the offered rate passes its capacity.
"""

from __future__ import annotations

import pytest

from kubellm.bench.client import Target
from kubellm.bench.records import SLO
from kubellm.bench.runner import BenchPlan, RateSearch, execute
from kubellm.bench.testing import sim_process
from kubellm.bench.workload import Length, WorkloadConfig


@pytest.mark.slow
async def test_search_finds_a_rate_between_an_easy_and_an_impossible_one() -> None:
    workload = WorkloadConfig(prompt_tokens=Length(low=64, high=64), output_tokens=Length(low=32, high=32))
    with sim_process(["--model", "m", "--profile", "tiny", "--max-num-seqs", "2"]) as url:
        plan = BenchPlan(target=Target(url, "m"), workload=workload, requests=30, slo=SLO(ttft_s=0.1),
                         search=RateSearch(low=2, high=64, min_goodput=0.9, steps=3))
        result = await execute(plan)
    assert result.search is not None and result.search.best_rate is not None
    by_rate = {run.load.value: run.summary.goodput for run in result.runs}
    assert list(by_rate)[:2] == [64, 2]
    assert by_rate[64] is not None and by_rate[64] < 0.5, "64 req/s is far past 2 sequences' capacity"
    assert by_rate[2] == 1.0
    best = result.search.best_rate
    assert 2 < best < 64
    assert (by_rate[best] or 0) >= 0.9
    assert all((goodput or 0) < 0.9 for rate, goodput in by_rate.items() if rate > best)
