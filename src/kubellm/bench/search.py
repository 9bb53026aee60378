"""Sweeps over offered load, and the search for the highest rate whose goodput meets the SLOs.

Both take the run as an injected coroutine function, so the search logic is tested without
a server and the CLI wires in the real driver.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from kubellm.bench.errors import ThresholdError
from kubellm.bench.records import LoadPoint
from kubellm.bench.results import RunResult, SearchOutcome

Runner = Callable[[LoadPoint], Awaitable[RunResult]]


async def sweep(points: Sequence[LoadPoint], runner: Runner) -> list[RunResult]:
    """Run each load point in turn (never overlapping, so runs do not disturb each other)."""
    return [await runner(point) for point in points]


def _meets(run: RunResult, min_goodput: float) -> bool:
    goodput = run.summary.goodput
    return goodput is not None and goodput >= min_goodput


async def find_max_rate(
    runner: Runner,
    *,
    low: float,
    high: float,
    min_goodput: float,
    steps: int = 5,
) -> tuple[SearchOutcome, list[RunResult]]:
    """Bisect on request rate between *low* and *high* for the highest rate meeting goodput.

    Goodput here is the share of requests within the TTFT and TPOT SLOs; the runner's
    summaries must carry one (the CLI refuses a search without an SLO).
    """
    if not 0 < low < high:
        raise ThresholdError(f"rate search needs 0 < low < high, got low={low} high={high}")
    if not 0 < min_goodput <= 1:
        raise ThresholdError(f"minimum goodput is a share in (0, 1], got {min_goodput}")
    runs = [await runner(LoadPoint(mode="rate", value=high))]
    if _meets(runs[-1], min_goodput):
        note = "the upper bound met the SLOs; raise it to search further"
        return SearchOutcome(min_goodput=min_goodput, best_rate=high, note=note), runs
    runs.append(await runner(LoadPoint(mode="rate", value=low)))
    if not _meets(runs[-1], min_goodput):
        note = "even the lower bound missed the SLOs"
        return SearchOutcome(min_goodput=min_goodput, best_rate=None, note=note), runs
    good, bad = low, high
    for _ in range(steps):
        middle = (good + bad) / 2
        runs.append(await runner(LoadPoint(mode="rate", value=middle)))
        good, bad = (middle, bad) if _meets(runs[-1], min_goodput) else (good, middle)
    note = f"highest rate meeting the SLOs lies in [{good:g}, {bad:g}) req/s"
    return SearchOutcome(min_goodput=min_goodput, best_rate=good, note=note), runs
