"""Side-by-side comparison of result files: rows of figures, one column per run."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from kubellm.bench import results
from kubellm.bench.report import ms
from kubellm.bench.stats import Summary

Row = tuple[str, Callable[[Summary], str]]

ROWS: tuple[Row, ...] = (
    ("requests", lambda s: str(s.requests)),
    ("error rate", lambda s: f"{s.error_rate:.2%}"),
    ("TTFT p50 (ms)", lambda s: ms(s.ttft.p50 if s.ttft else None)),
    ("TTFT p99 (ms)", lambda s: ms(s.ttft.p99 if s.ttft else None)),
    ("TPOT p50 (ms)", lambda s: ms(s.tpot.p50 if s.tpot else None)),
    ("TPOT p99 (ms)", lambda s: ms(s.tpot.p99 if s.tpot else None)),
    ("e2e p99 (ms)", lambda s: ms(s.e2e.p99 if s.e2e else None)),
    ("requests/s", lambda s: f"{s.request_rate:.2f}"),
    ("output tokens/s", lambda s: f"{s.output_tokens_per_s:.1f}"),
    ("goodput", lambda s: "-" if s.goodput is None else f"{s.goodput:.1%}"),
)


def labeled_summaries(paths: Sequence[Path]) -> list[tuple[str, Summary]]:
    """Every run of every file, labelled ``file`` (or ``file @ load`` for sweeps)."""
    labeled: list[tuple[str, Summary]] = []
    for path in paths:
        result = results.load(path)
        for run in result.runs:
            name = path.stem if path.stem != "result" else path.parent.name
            label = name if len(result.runs) == 1 else f"{name} @ {run.load.label}"
            labeled.append((label, run.summary))
    return labeled


def table(labeled: Sequence[tuple[str, Summary]]) -> list[list[str]]:
    """Header row then one row per figure."""
    header = ["", *(label for label, _ in labeled)]
    return [header, *([name, *(fmt(s) for _, s in labeled)] for name, fmt in ROWS)]
