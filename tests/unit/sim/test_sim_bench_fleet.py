"""bench/sim_fleet.py: the largest faithful fleet is capped by the first size that fails."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parents[3] / "bench" / "sim_fleet.py"


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("sim_fleet_bench", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _row(n: int, ttft: float, tpot: float, ttft_med: float = 0.0, tpot_med: float = 0.0) -> dict[str, float]:
    return {"engines": n, "ttft_err": ttft, "tpot_err": tpot, "ttft_median_err": ttft_med, "tpot_median_err": tpot_med}


def test_a_larger_size_passing_after_a_failure_does_not_count(bench: ModuleType) -> None:
    rows = [_row(1, 0.01, 0.0), _row(8, 0.13, 0.0), _row(16, 0.02, 0.0), _row(32, 0.5, 0.1)]
    assert bench.largest_faithful_fleet(rows, 0.05, "mean") == 1


def test_every_size_passing_gives_the_largest(bench: ModuleType) -> None:
    rows = [_row(64, 0.01, -0.04), _row(1, 0.0, 0.0), _row(16, -0.05, 0.05)]  # order of measurement is free
    assert bench.largest_faithful_fleet(rows, 0.05, "mean") == 64


def test_no_passing_smallest_size_gives_zero_and_median_errors_are_separate(bench: ModuleType) -> None:
    rows = [_row(1, 0.06, 0.0, 0.03, 0.0), _row(16, 0.2, 0.0, 0.02, 0.01), _row(32, 0.3, 0.0, 0.06, 0.0)]
    assert bench.largest_faithful_fleet(rows, 0.05, "mean") == 0
    assert bench.largest_faithful_fleet(rows, 0.05, "median") == 16
    assert bench.largest_faithful_fleet([], 0.05) == 0
