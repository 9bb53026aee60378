"""Composition of one bench invocation: workload + loads + driver + search, then the files.

Kept apart from the CLI so tests and benchmark scripts drive exactly what users run.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from kubellm.bench import driver, report, results, search
from kubellm.bench.client import Target
from kubellm.bench.records import SLO, LoadPoint, RequestRecord
from kubellm.bench.results import BenchResult, RunResult, SearchOutcome
from kubellm.bench.stats import summarize
from kubellm.bench.workload import WorkloadConfig, generate

T = TypeVar("T")
OnStart = Callable[[LoadPoint, int], None]


@dataclass(frozen=True)
class RateSearch:
    low: float
    high: float
    min_goodput: float
    steps: int


@dataclass
class BenchPlan:
    """Everything ``kubellm bench`` was asked to do."""

    target: Target
    workload: WorkloadConfig
    requests: int
    loads: Sequence[LoadPoint] = ()
    search: RateSearch | None = None
    slo: SLO | None = None
    on_start: OnStart = lambda _load, _count: None
    on_record: Callable[[RequestRecord], None] = field(default=lambda _record: None)


async def run_point(plan: BenchPlan, load: LoadPoint) -> RunResult:
    requests = generate(plan.workload, plan.requests)
    plan.on_start(load, len(requests))
    records = await driver.run(
        plan.target, requests, load, seed=plan.workload.seed, on_record=plan.on_record
    )
    return RunResult(load=load, summary=summarize(records, plan.slo), records=records)


async def execute(plan: BenchPlan) -> BenchResult:
    """Run the sweep (or the single load) and the rate search, if asked for."""

    async def runner(load: LoadPoint) -> RunResult:
        return await run_point(plan, load)

    runs = await search.sweep(plan.loads, runner)
    outcome: SearchOutcome | None = None
    if plan.search is not None:
        outcome, searched = await search.find_max_rate(
            runner,
            low=plan.search.low,
            high=plan.search.high,
            min_goodput=plan.search.min_goodput,
            steps=plan.search.steps,
        )
        runs.extend(searched)
    return BenchResult(
        url=plan.target.base_url,
        model=plan.target.model,
        workload=plan.workload,
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        runs=runs,
        search=outcome,
    )


def write_outputs(result: BenchResult, directory: Path, *, with_plots: bool = True) -> list[Path]:
    """result.json, summary.md and the PNG plots into *directory*."""
    directory.mkdir(parents=True, exist_ok=True)
    images: list[Path] = []
    if with_plots:
        from kubellm.bench import plots  # matplotlib is slow to import; only load it to draw

        images = plots.write_all(result.runs, directory)
    results.save(result, directory / "result.json")
    summary = directory / "summary.md"
    results.write_atomic(summary, report.markdown(result, [p.name for p in images]))
    return [directory / "result.json", summary, *images]


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """Run *coro* on uvloop when installed: its lower per-event cost keeps timing honest."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency off Windows
        return asyncio.run(coro)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coro)


__all__ = ["BenchPlan", "RateSearch", "execute", "run_async", "write_outputs"]
