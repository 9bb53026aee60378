"""Commands of kubellm.bench: ``kubellm bench [run] URL``, ``kubellm bench compare``, ``kubellm check``.

Parsing and printing only; the work is in :mod:`kubellm.bench.runner` and
:mod:`kubellm.bench.check`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from typer.core import TyperGroup

from kubellm.bench import compare as compare_mod
from kubellm.bench import report
from kubellm.bench.check import DEFAULT_SERIES, CheckPlan, CheckReport, run_check
from kubellm.bench.client import Target
from kubellm.bench.errors import BenchError, ThresholdError, UniformFailureError, WorkloadError
from kubellm.bench.probe import probe
from kubellm.bench.records import SLO, LoadPoint, RequestRecord
from kubellm.bench.results import BenchResult
from kubellm.bench.runner import BenchPlan, RateSearch, execute_until_signalled, run_async, write_outputs
from kubellm.bench.thresholds import Thresholds
from kubellm.bench.workload import Length, WorkloadConfig, WorkloadKind


class _DefaultRun(TyperGroup):
    """``kubellm bench URL ...`` means ``kubellm bench run URL ...``."""

    # ctx is typer's vendored click Context, which typer does not export under a public name
    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["run", *args]
        return super().parse_args(ctx, args)


bench_app = typer.Typer(
    cls=_DefaultRun,
    help="Load-test an OpenAI-compatible endpoint: `kubellm bench URL --model M`.",
    no_args_is_help=True,
)
console = Console(stderr=True)


def _fail(err: Exception) -> typer.Exit:
    console.print(f"[red]error:[/red] {err}", highlight=False, soft_wrap=True)
    return typer.Exit(getattr(err, "exit_code", 2))  # 2: bad options; 1: the target (TargetError...)


def _floats(text: str | None, what: str) -> list[float]:
    if not text:
        return []
    try:
        values = [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise WorkloadError(f"{what} {text!r} is not a comma-separated list of numbers") from None
    if any(v <= 0 for v in values):
        raise WorkloadError(f"{what} values must be above 0, got {text!r}")
    return values


def _loads(rate: str | None, concurrency: str | None, arrivals: str) -> list[LoadPoint]:
    if arrivals not in ("poisson", "constant"):
        raise WorkloadError(f"--arrivals must be poisson or constant, got {arrivals!r}")
    points = [
        LoadPoint(mode="rate", value=v, arrivals=arrivals)
        for v in _floats(rate, "--rate")
    ]
    points += [LoadPoint(mode="concurrency", value=v) for v in _floats(concurrency, "--concurrency")]
    return points


def _slo(ttft_ms: float | None, tpot_ms: float | None) -> SLO | None:
    if ttft_ms is None and tpot_ms is None:
        return None
    try:
        return SLO(
            ttft_s=None if ttft_ms is None else ttft_ms / 1000,
            tpot_s=None if tpot_ms is None else tpot_ms / 1000,
        )
    except ValidationError:
        raise ThresholdError("--slo-ttft-ms and --slo-tpot-ms must be above 0") from None


def _workload(**options: Any) -> WorkloadConfig:
    try:
        return WorkloadConfig(**options)
    except ValidationError as err:
        first = err.errors()[0]
        raise WorkloadError(f"workload: {first['msg']}") from None


class _ProgressHooks:
    """A rich progress bar per run: completed of total, failures, elapsed."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.task: Any = None
        self.failed = 0

    def start(self, load: LoadPoint, count: int) -> None:
        if self.task is not None:
            self.progress.update(self.task, visible=False)
        self.failed = 0
        self.task = self.progress.add_task(load.label, total=count, failed=0)

    def record(self, record: RequestRecord) -> None:
        self.failed += 0 if record.ok else 1
        self.progress.update(self.task, advance=1, failed=self.failed)


@bench_app.command("run")
def bench_run(
    url: Annotated[str, typer.Argument(help="base URL of the server, e.g. http://127.0.0.1:8000")],
    model: Annotated[str, typer.Option(help="model name to request")],
    rate: Annotated[str | None, typer.Option(help="request rate(s) in req/s, Poisson arrivals; '1,2,4' sweeps")] = None,
    concurrency: Annotated[str | None, typer.Option(help="fixed concurrency(ies); '1,8,32' sweeps")] = None,
    arrivals: Annotated[str, typer.Option(help="rate mode: poisson | constant spacing")] = "poisson",
    requests: Annotated[int, typer.Option(min=1, help="requests per run")] = 100,
    workload: Annotated[str, typer.Option(help="synthetic | shared-prefix | multi-turn | dataset")] = "synthetic",
    prompt_tokens: Annotated[str, typer.Option(help="prompt length: N or LOW:HIGH")] = "128",
    output_tokens: Annotated[str, typer.Option(help="output length (max_tokens): N or LOW:HIGH")] = "64",
    prefixes: Annotated[int, typer.Option(min=1, help="shared-prefix: distinct system prompts")] = 4,
    prefix_tokens: Annotated[int, typer.Option(min=1, help="shared-prefix: tokens per prefix")] = 256,
    turns: Annotated[int, typer.Option(min=1, help="multi-turn: turns per conversation")] = 3,
    dataset: Annotated[Path | None, typer.Option(help="dataset: JSONL file of {messages, max_tokens}")] = None,
    seed: Annotated[int, typer.Option(help="seed of the workload and the arrivals")] = 0,
    slo_ttft_ms: Annotated[float | None, typer.Option(help="goodput SLO on TTFT (ms)")] = None,
    slo_tpot_ms: Annotated[float | None, typer.Option(help="goodput SLO on TPOT (ms)")] = None,
    find_max_rate: Annotated[bool, typer.Option(help="search the highest rate meeting the SLOs")] = False,
    rate_low: Annotated[float, typer.Option(help="rate search: lower bound (req/s)")] = 1.0,
    rate_high: Annotated[float, typer.Option(help="rate search: upper bound (req/s)")] = 64.0,
    min_goodput: Annotated[float, typer.Option(help="rate search: share of requests within SLO")] = 0.9,
    search_steps: Annotated[int, typer.Option(min=1, help="rate search: bisection steps")] = 4,
    out: Annotated[Path | None, typer.Option(help="directory for result.json, summary.md, PNGs")] = None,
    plot: Annotated[bool, typer.Option(help="write PNG plots")] = True,
    api_key: Annotated[str | None, typer.Option(envvar="KUBELLM_API_KEY", help="bearer token")] = None,
    timeout: Annotated[float, typer.Option(help="per-request timeout (s)")] = 300.0,
    ignore_eos: Annotated[bool, typer.Option(help="send vLLM's ignore_eos (exact output length)")] = False,
) -> None:
    """Load-test URL and write a JSON result, a Markdown summary and plots."""
    try:
        plan = BenchPlan(
            target=Target(url, model, api_key, timeout_s=timeout, ignore_eos=ignore_eos),
            workload=_workload(
                kind=workload, prompt_tokens=Length.parse(prompt_tokens),
                output_tokens=Length.parse(output_tokens), prefix_count=prefixes,
                prefix_tokens=prefix_tokens, turns=turns, dataset=dataset, seed=seed,
            ),
            requests=requests,
            loads=_loads(rate, concurrency, arrivals),
            slo=_slo(slo_ttft_ms, slo_tpot_ms),
            search=RateSearch(rate_low, rate_high, min_goodput, search_steps) if find_max_rate else None,
        )
        _validate_plan(plan)
        if plan.workload.dataset is not None:
            from kubellm.bench.workload import load_dataset

            load_dataset(plan.workload.dataset)  # fail before any traffic on a bad file
        run_async(probe(url, model, plan.target.headers()))  # nothing answers, model not served
    except BenchError as err:
        raise _fail(err) from None
    directory = out or Path(f"kubellm-bench-{datetime.now(UTC):%Y%m%dT%H%M%SZ}")
    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("failed {task.fields[failed]}"), TimeElapsedColumn(), console=console,
    ) as progress:
        hooks = _ProgressHooks(progress)
        plan.on_start, plan.on_record = hooks.start, hooks.record
        try:
            result = run_async(execute_until_signalled(plan))
        except UniformFailureError as err:
            _write_partial(err, directory, plot)
            raise _fail(err) from None
        except BenchError as err:
            raise _fail(err) from None
    if not result.runs:
        console.print("stopped before any request was sent; nothing written")
        return
    files = write_outputs(result, directory, with_plots=plot)
    typer.echo(report.markdown(result))
    console.print("wrote " + ", ".join(str(f) for f in files))


def _write_partial(err: UniformFailureError, directory: Path, plot: bool) -> None:
    """The loads that ran before the failing one measured something: keep them."""
    if isinstance(err.partial, BenchResult):
        files = write_outputs(err.partial, directory, with_plots=plot)
        console.print("wrote the loads that completed: " + ", ".join(str(f) for f in files))
    else:
        console.print("nothing written")


def _validate_plan(plan: BenchPlan) -> None:
    if not plan.loads and plan.search is None:
        raise WorkloadError("give a load: --rate R, --concurrency C (either may be a list), or --find-max-rate")
    if plan.search is not None and plan.slo is None:
        raise ThresholdError("--find-max-rate needs an SLO: --slo-ttft-ms and/or --slo-tpot-ms")


@bench_app.command("compare")
def bench_compare(
    files: Annotated[list[Path], typer.Argument(help="result.json files of earlier runs")],
    plot: Annotated[Path | None, typer.Option(help="write a comparison PNG here")] = None,
) -> None:
    """Print a side-by-side table of runs (and optionally a plot)."""
    try:
        labeled = compare_mod.labeled_summaries(files)
    except BenchError as err:
        raise _fail(err) from None
    rows = compare_mod.table(labeled)
    table = Table(*rows[0])
    for row in rows[1:]:
        table.add_row(*row)
    Console().print(table)
    if plot is not None:
        from kubellm.bench import plots  # matplotlib is slow to import; only load it to draw

        plots.save(plots.compare_bars(labeled), plot)
        console.print(f"wrote {plot}")


def _thresholds(spec: Path | None, overrides: dict[str, float | None]) -> Thresholds:
    base = Thresholds()
    if spec is not None:
        from kubellm.spec import SpecError, load_spec  # the spec component owns the file format

        try:
            base = Thresholds.from_slo(load_spec(spec).spec.slo)
        except SpecError as err:
            raise ThresholdError(f"cannot read thresholds from {spec}:\n{err}") from None
    chosen = {k: v for k, v in overrides.items() if v is not None}
    try:
        return Thresholds(**(base.model_dump() | chosen))
    except ValidationError as err:
        raise ThresholdError(f"threshold: {err.errors()[0]['loc'][0]}: {err.errors()[0]['msg']}") from None


def check_command(
    url: Annotated[str, typer.Argument(help="base URL of the deployment")],
    model: Annotated[str | None, typer.Option(help="model expected in /v1/models (default: the first)")] = None,
    spec: Annotated[Path | None, typer.Option(help="LLMService YAML whose spec.slo gives the thresholds")] = None,
    ttft_p50_ms: Annotated[float | None, typer.Option(help="TTFT p50 must be under this (default 500)")] = None,
    ttft_p99_ms: Annotated[float | None, typer.Option(help="TTFT p99 must be under this (default 2000)")] = None,
    tpot_p99_ms: Annotated[float | None, typer.Option(help="TPOT p99 must be under this (default: none)")] = None,
    max_error_rate: Annotated[float | None, typer.Option(help="error share allowed (default 0.001)")] = None,
    min_output_tps: Annotated[float | None, typer.Option(help="output tokens/s floor (default 1)")] = None,
    metric: Annotated[list[str] | None, typer.Option(help="series /metrics must expose (repeatable)")] = None,
    requests: Annotated[int, typer.Option(min=1, help="requests in the load test")] = 40,
    concurrency: Annotated[int, typer.Option(min=1, help="concurrency of the load test")] = 4,
    api_key: Annotated[str | None, typer.Option(envvar="KUBELLM_API_KEY", help="bearer token")] = None,
    timeout: Annotated[float, typer.Option(help="per-request timeout (s)")] = 60.0,
    json_out: Annotated[Path | None, typer.Option("--json", help="also write the verdicts as JSON")] = None,
) -> None:
    """Check a deployment works and is fast enough; exit 1 naming what failed."""
    try:
        thresholds = _thresholds(spec, {
            "ttft_p50_ms": ttft_p50_ms, "ttft_p99_ms": ttft_p99_ms, "tpot_p99_ms": tpot_p99_ms,
            "max_error_rate": max_error_rate, "min_output_tokens_per_s": min_output_tps,
        })
    except BenchError as err:
        raise _fail(err) from None
    plan = CheckPlan(url, model, api_key, thresholds, series=tuple(metric or DEFAULT_SERIES),
                     requests=requests, concurrency=concurrency, timeout_s=timeout)
    try:
        outcome = run_async(run_check(plan))
    except BenchError as err:
        raise _fail(err) from None
    _print_check(outcome)
    if json_out is not None:
        _write_check_json(outcome, json_out)
    if not outcome.passed:
        raise typer.Exit(1)


def _print_check(outcome: CheckReport) -> None:
    table = Table("check", "expected", "measured", "result")
    for v in outcome.verdicts:
        table.add_row(v.name, v.expected, v.measured, "[green]PASS[/green]" if v.passed else "[red]FAIL[/red]")
    Console().print(table)
    for v in outcome.failures:
        console.print(f"[red]FAILED[/red] {v.name}: expected {v.expected}, measured {v.measured}")
    if outcome.passed:
        console.print("[green]all checks passed[/green]")


def _write_check_json(outcome: CheckReport, path: Path) -> None:
    import json

    from kubellm.bench.results import write_atomic

    body = {
        "passed": outcome.passed,
        "verdicts": [vars(v) for v in outcome.verdicts],
        "summary": None if outcome.summary is None else outcome.summary.model_dump(),
    }
    write_atomic(path, json.dumps(body, indent=1))


def register(app: typer.Typer) -> None:
    """Add this component's commands to *app*."""
    app.add_typer(bench_app, name="bench")
    app.command("check")(check_command)
