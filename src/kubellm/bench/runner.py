"""Composition of one bench invocation: workload + loads + driver + search, then the files.

Kept apart from the CLI so tests and benchmark scripts drive exactly what users run.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from kubellm.bench import driver, report, results, search
from kubellm.bench.client import Target
from kubellm.bench.errors import UniformFailureError
from kubellm.bench.records import SLO, LoadPoint, RequestRecord
from kubellm.bench.results import BenchResult, RunResult, SearchOutcome
from kubellm.bench.stats import summarize
from kubellm.bench.watch import UNIFORM_FAILURE_LIMIT, FailureWatch
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
    stop: asyncio.Event = field(default_factory=asyncio.Event)


class _Stopped(Exception):
    """A stop was requested before a run had sent anything; never escapes :func:`execute`."""


async def run_point(plan: BenchPlan, load: LoadPoint, *, watched: bool = True) -> RunResult:
    """One load point. *watched*: stop early (UniformFailureError) when every request fails the
    same way; off in the rate search, where a failing rate is an answer (goodput 0)."""
    if plan.stop.is_set():
        raise _Stopped
    requests = generate(plan.workload, plan.requests)
    plan.on_start(load, len(requests))
    watch = FailureWatch(min(UNIFORM_FAILURE_LIMIT, len(requests)) if watched else len(requests) + 1)
    halt = asyncio.Event()  # this run's stop: the user's (plan.stop) or the watch's
    reasons: list[str] = []

    def on_record(record: RequestRecord) -> None:
        plan.on_record(record)
        reason = watch.observe(record)
        if reason is not None:
            reasons.append(reason)
            halt.set()

    forward = asyncio.create_task(_forward(plan.stop, halt))
    try:
        records = await driver.run(
            plan.target, requests, load, seed=plan.workload.seed, on_record=on_record, stop=halt,
        )
    finally:
        forward.cancel()
    if reasons:
        raise UniformFailureError(f"{load.label}: {reasons[0]}; stopped after {len(records)} requests")
    if not records:
        raise _Stopped
    return RunResult(load=load, summary=summarize(records, plan.slo), records=records)


async def _forward(source: asyncio.Event, target: asyncio.Event) -> None:
    await source.wait()
    target.set()


async def execute(plan: BenchPlan) -> BenchResult:
    """Run the sweep (or the single load) and the rate search, if asked for.

    When ``plan.stop`` is set, what has run so far is returned with ``interrupted`` set;
    a run cut short keeps the records of the requests it had sent.
    """
    runs: list[RunResult] = []

    def recording(watched: bool) -> Callable[[LoadPoint], Coroutine[Any, Any, RunResult]]:
        async def run(load: LoadPoint) -> RunResult:
            done = await run_point(plan, load, watched=watched)
            runs.append(done)
            return done

        return run

    runner, searcher = recording(True), recording(False)

    outcome: SearchOutcome | None = None
    try:
        with contextlib.suppress(_Stopped):
            await search.sweep(plan.loads, runner)
            if plan.search is not None:
                outcome, _ = await search.find_max_rate(
                    searcher,
                    low=plan.search.low,
                    high=plan.search.high,
                    min_goodput=plan.search.min_goodput,
                    steps=plan.search.steps,
                )
    except UniformFailureError as exc:
        # the runs before this one measured something: the CLI may still write them
        exc.partial = _result(plan, runs, None) if runs else None
        raise
    return _result(plan, runs, outcome)


def _result(plan: BenchPlan, runs: list[RunResult], outcome: SearchOutcome | None) -> BenchResult:
    return BenchResult(
        url=plan.target.base_url,
        model=plan.target.model,
        workload=plan.workload,
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        runs=runs,
        search=None if plan.stop.is_set() else outcome,
        interrupted=plan.stop.is_set(),
    )


async def execute_until_signalled(plan: BenchPlan) -> BenchResult:
    """:func:`execute`, with SIGTERM and SIGINT setting ``plan.stop`` (stop sending, finish)."""
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, plan.stop.set)
    try:
        return await execute(plan)
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)


def write_outputs(result: BenchResult, directory: Path, *, with_plots: bool = True) -> list[Path]:
    """result.json, summary.md and the PNG plots into *directory* (no plots when no request
    succeeded: they would be empty axes)."""
    directory.mkdir(parents=True, exist_ok=True)
    images: list[Path] = []
    if with_plots and any(run.summary.completed for run in result.runs):
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


__all__ = ["BenchPlan", "RateSearch", "execute", "execute_until_signalled", "run_async", "write_outputs"]
