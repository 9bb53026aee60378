"""The plots must be readable: every panel titled, both axes labelled with units, a legend."""

from __future__ import annotations

from pathlib import Path

from matplotlib.figure import Figure

from kubellm.bench import plots
from kubellm.bench.records import SLO, LoadPoint
from kubellm.bench.results import RunResult
from kubellm.bench.stats import summarize

from .conftest import ok_record


def sweep_runs() -> list[RunResult]:
    runs = []
    for rate in (1.0, 2.0, 4.0):
        records = [ok_record(i, start=i / rate, ttft=0.05 * rate + 0.001 * i, tpot=0.01 * rate) for i in range(30)]
        runs.append(RunResult(load=LoadPoint(mode="rate", value=rate), summary=summarize(records, SLO(ttft_s=0.1)),
                              records=records))
    return runs


def assert_readable(figure: Figure) -> None:
    main_axes = [a for a in figure.axes if a.get_legend() is not None or a.get_title()]
    assert main_axes
    for axes in figure.axes:
        assert axes.get_ylabel(), "every y axis is labelled"
        assert "(" in axes.get_ylabel(), f"y label {axes.get_ylabel()!r} gives a unit"
    for axes in main_axes:
        assert axes.get_title() and axes.get_xlabel()
        legend = axes.get_legend()
        assert legend is not None and [t.get_text() for t in legend.get_texts()]


def test_each_figure_is_labelled() -> None:
    runs = sweep_runs()
    for figure in (plots.latency_vs_load(runs), plots.distributions(runs), plots.throughput_vs_load(runs)):
        assert_readable(figure)
    legend = plots.latency_vs_load(runs).axes[0].get_legend()
    assert legend is not None
    assert [t.get_text() for t in legend.get_texts()] == ["TTFT p50", "TTFT p90", "TTFT p99"]
    assert plots.latency_vs_load(runs).axes[0].get_xlabel() == "offered load (requests/s)"


def test_latency_plot_draws_the_measured_percentiles() -> None:
    runs = sweep_runs()
    line = plots.latency_vs_load(runs).axes[0].get_lines()[0]
    assert list(line.get_xdata()) == [1.0, 2.0, 4.0]
    assert list(line.get_ydata()) == [r.summary.ttft.p50 * 1000 for r in runs if r.summary.ttft]


def test_write_all_writes_png_files(tmp_path: Path) -> None:
    files = plots.write_all(sweep_runs(), tmp_path)
    assert [f.name for f in files] == ["latency_vs_load.png", "latency_distributions.png", "throughput_vs_load.png"]
    for file in files:
        assert file.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and file.stat().st_size > 10_000
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f.name for f in files)


def test_compare_figure_is_labelled(tmp_path: Path) -> None:
    runs = sweep_runs()
    figure = plots.compare_bars([("a", runs[0].summary), ("b", runs[2].summary)])
    assert figure.axes[0].get_legend() is not None
    assert figure.axes[1].get_ylabel() == "output throughput (tokens/s)"
    plots.save(figure, tmp_path / "c.png")
    assert (tmp_path / "c.png").stat().st_size > 10_000
