from __future__ import annotations

import statistics

import pytest

from kubellm.bench.arrivals import constant_offsets, poisson_offsets
from kubellm.bench.errors import WorkloadError


def test_poisson_gaps_average_one_over_rate_and_look_exponential() -> None:
    offsets = poisson_offsets(rate=20.0, count=20_001, seed=3)
    gaps = [b - a for a, b in zip(offsets, offsets[1:])]
    assert offsets[0] == 0.0 and all(g >= 0 for g in gaps)
    assert statistics.fmean(gaps) == pytest.approx(1 / 20, rel=0.03)
    # an exponential's standard deviation equals its mean (a constant schedule's is 0)
    assert statistics.pstdev(gaps) == pytest.approx(1 / 20, rel=0.05)


def test_poisson_schedule_is_seeded() -> None:
    assert poisson_offsets(5, 50, seed=1) == poisson_offsets(5, 50, seed=1)
    assert poisson_offsets(5, 50, seed=1) != poisson_offsets(5, 50, seed=2)


def test_constant_schedule_is_evenly_spaced() -> None:
    assert constant_offsets(4, 4) == [0.0, 0.25, 0.5, 0.75]


@pytest.mark.parametrize("rate", [0.0, -1.0])
def test_rate_must_be_positive(rate: float) -> None:
    with pytest.raises(WorkloadError, match="above 0"):
        poisson_offsets(rate, 3, seed=0)
    with pytest.raises(WorkloadError, match="above 0"):
        constant_offsets(rate, 3)
