"""PNG plots of bench results, drawn with matplotlib's object API (no pyplot global state)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from kubellm.bench.records import RequestRecord
from kubellm.bench.results import RunResult
from kubellm.bench.stats import Distribution, Summary

_PERCENTILE_STYLES = (("p50", "-"), ("p90", "--"), ("p99", ":"))


def _load_axis_label(runs: Sequence[RunResult]) -> str:
    modes = {run.load.mode for run in runs}
    if modes == {"rate"}:
        return "offered load (requests/s)"
    if modes == {"concurrency"}:
        return "concurrency (requests in flight)"
    return "offered load"


def _ordered(runs: Sequence[RunResult]) -> list[RunResult]:
    return sorted(runs, key=lambda run: run.load.value)


def _latency_panel(axes: Axes, runs: Sequence[RunResult], metric: str, title: str) -> None:
    loads = [run.load.value for run in runs]
    for name, style in _PERCENTILE_STYLES:
        values = [_ms(getattr(run.summary, metric), name) for run in runs]
        axes.plot(loads, values, style, marker="o", label=f"{title} {name}")
    axes.set_title(f"{title} against load")
    axes.set_xlabel(_load_axis_label(runs))
    axes.set_ylabel(f"{title} (ms)")
    axes.grid(True, alpha=0.3)
    axes.legend()


def _ms(dist: Distribution | None, name: str) -> float:
    return float("nan") if dist is None else float(getattr(dist, name)) * 1000


def latency_vs_load(runs: Sequence[RunResult]) -> Figure:
    """TTFT and TPOT percentiles against offered load."""
    figure = Figure(figsize=(11, 4.5))
    ordered = _ordered(runs)
    _latency_panel(figure.add_subplot(1, 2, 1), ordered, "ttft", "TTFT")
    _latency_panel(figure.add_subplot(1, 2, 2), ordered, "tpot", "TPOT")
    return figure


def _ttft(record: RequestRecord) -> float | None:
    return record.ttft_s


def _tpot(record: RequestRecord) -> float | None:
    return record.tpot_s


def distributions(runs: Sequence[RunResult]) -> Figure:
    """Histograms of per-request TTFT and TPOT, one outline per run."""
    figure = Figure(figsize=(11, 4.5))
    panels = (
        (figure.add_subplot(1, 2, 1), "TTFT", _ttft),
        (figure.add_subplot(1, 2, 2), "TPOT", _tpot),
    )
    for axes, title, pick in panels:
        for run in _ordered(runs):
            values = [v * 1000 for v in (pick(r) for r in run.records if r.ok) if v is not None]
            if values:
                axes.hist(values, bins=40, range=_span(values), histtype="step",
                          linewidth=1.5, label=run.load.label)
        axes.set_title(f"{title} distribution")
        axes.set_xlabel(f"{title} (ms)")
        axes.set_ylabel("requests (count)")
        axes.grid(True, alpha=0.3)
        axes.legend()
    return figure


def _span(values: Sequence[float]) -> tuple[float, float]:
    """Histogram range; widened when a fixed-latency server makes all values (nearly) equal,
    since numpy cannot cut a range narrower than float precision into 40 bins."""
    low, high = min(values), max(values)
    if high - low < 1e-3:
        return low - 0.5, high + 0.5
    return low, high


def throughput_vs_load(runs: Sequence[RunResult]) -> Figure:
    """Output tokens/s and completed requests/s against offered load."""
    figure = Figure(figsize=(7, 4.5))
    ordered = _ordered(runs)
    loads = [run.load.value for run in ordered]
    tokens = figure.add_subplot(1, 1, 1)
    line1 = tokens.plot(loads, [r.summary.output_tokens_per_s for r in ordered], "-o",
                        color="tab:blue", label="output tokens/s")
    tokens.set_xlabel(_load_axis_label(ordered))
    tokens.set_ylabel("output throughput (tokens/s)")
    requests = tokens.twinx()
    line2 = requests.plot(loads, [r.summary.request_rate for r in ordered], "--s",
                          color="tab:orange", label="completed requests/s")
    requests.set_ylabel("request throughput (requests/s)")
    tokens.set_title("Throughput against load")
    tokens.grid(True, alpha=0.3)
    tokens.legend(line1 + line2, [str(line.get_label()) for line in line1 + line2], loc="upper left")
    return figure


def compare_bars(labeled: Sequence[tuple[str, Summary]]) -> Figure:
    """Grouped bars of TTFT and TPOT (p50, p99) and output throughput, one colour per run."""
    figure = Figure(figsize=(12, 4.5))
    latency = figure.add_subplot(1, 2, 1)
    groups = [("TTFT p50", "ttft", "p50"), ("TTFT p99", "ttft", "p99"),
              ("TPOT p50", "tpot", "p50"), ("TPOT p99", "tpot", "p99")]
    width = 0.8 / max(len(labeled), 1)
    for i, (label, summary) in enumerate(labeled):
        xs = [g + i * width for g in range(len(groups))]
        latency.bar(xs, [_ms(getattr(summary, m), p) for _, m, p in groups], width, label=label)
    latency.set_xticks([g + 0.4 - width / 2 for g in range(len(groups))],
                       [name for name, _, _ in groups])
    latency.set_ylabel("latency (ms)")
    latency.set_title("Latency by run")
    latency.legend()
    throughput = figure.add_subplot(1, 2, 2)
    throughput.bar([label for label, _ in labeled],
                   [summary.output_tokens_per_s for _, summary in labeled],
                   color=[f"C{i}" for i in range(len(labeled))])
    throughput.set_ylabel("output throughput (tokens/s)")
    throughput.set_xlabel("run")
    throughput.set_title("Throughput by run")
    throughput.tick_params(axis="x", labelrotation=15)
    return figure


def save(figure: Figure, path: Path) -> Path:
    """Write *figure* as a PNG through a temporary name, so no half-written image is left."""
    figure.tight_layout()
    partial = path.with_name(f".{path.name}.partial.png")
    FigureCanvasAgg(figure).print_png(str(partial))  # type: ignore[no-untyped-call]
    partial.replace(path)
    return path


def write_all(runs: Sequence[RunResult], directory: Path) -> list[Path]:
    """Every plot of a bench run into *directory*; returns the files written."""
    return [
        save(latency_vs_load(runs), directory / "latency_vs_load.png"),
        save(distributions(runs), directory / "latency_distributions.png"),
        save(throughput_vs_load(runs), directory / "throughput_vs_load.png"),
    ]
