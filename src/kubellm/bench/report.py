"""Markdown summaries of bench results (pure text)."""

from __future__ import annotations

from collections.abc import Sequence

from kubellm.bench.results import BenchResult, RunResult
from kubellm.bench.stats import Distribution, Summary


def ms(value: float | None) -> str:
    return "-" if value is None else f"{value * 1000:.1f}"


def _dist_row(name: str, dist: Distribution | None) -> str:
    if dist is None:
        return f"| {name} | - | - | - | - | - |"
    cells = (dist.mean, dist.p50, dist.p90, dist.p95, dist.p99)
    return f"| {name} | " + " | ".join(ms(v) for v in cells) + " |"


def summary_table(summary: Summary) -> list[str]:
    lines = [
        "| latency (ms) | mean | p50 | p90 | p95 | p99 |",
        "|---|---:|---:|---:|---:|---:|",
        _dist_row("TTFT", summary.ttft),
        _dist_row("TPOT", summary.tpot),
        _dist_row("ITL", summary.itl),
        _dist_row("end-to-end", summary.e2e),
        "",
        f"- requests: {summary.requests} ({summary.completed} completed, {summary.failed} failed)",
        f"- error rate: {summary.error_rate:.2%}"
        + (f" ({_errors(summary)})" if summary.errors else ""),
        f"- throughput: {summary.request_rate:.2f} req/s, "
        f"{summary.output_tokens_per_s:.1f} output tokens/s over {summary.duration_s:.1f} s",
    ]
    if summary.goodput is not None and summary.slo is not None:
        lines.append(
            f"- goodput: {summary.goodput:.1%} of requests within {_slo_text(summary)} "
            f"({summary.goodput_rate:.2f} req/s)"
        )
    if summary.send_lag is not None:
        lines.append(
            f"- open-loop send lag: p50 {ms(summary.send_lag.p50)} ms, "
            f"p99 {ms(summary.send_lag.p99)} ms"
        )
    return lines


def _slo_text(summary: Summary) -> str:
    assert summary.slo is not None
    parts = [(name, value) for name, value in (("TTFT", summary.slo.ttft_s), ("TPOT", summary.slo.tpot_s))]
    return " and ".join(f"{name} <= {ms(value)} ms" for name, value in parts if value is not None)


def _errors(summary: Summary) -> str:
    return ", ".join(f"{kind}: {count}" for kind, count in sorted(summary.errors.items()))


def _run_section(run: RunResult) -> list[str]:
    return [f"## {run.load.label}", "", *summary_table(run.summary), ""]


def markdown(result: BenchResult, images: Sequence[str] = ()) -> str:
    """The summary of *result*, with links to its plots."""
    lines = [
        f"# kubellm bench: {result.model} at {result.url}",
        "",
        f"Workload: {result.workload.kind}, seed {result.workload.seed}; run {result.created_at}.",
        "",
    ]
    if result.interrupted:
        lines += ["**Interrupted**: stopped by a signal; the figures cover only the requests sent.", ""]
    for run in result.runs:
        lines.extend(_run_section(run))
    if result.search is not None:
        best = result.search.best_rate
        lines += [
            "## Rate search",
            "",
            f"Highest rate with goodput >= {result.search.min_goodput:.0%}: "
            + ("none found" if best is None else f"{best:g} req/s")
            + f" ({result.search.note}).",
            "",
        ]
    lines.extend(f"![{name}]({name})" for name in images)
    return "\n".join(lines) + "\n"
