"""Trace files a user gives: CSV or JSONL rows of arrival time, prompt and output tokens.

Columns (CSV header or JSON keys): ``at`` (seconds from the trace's start, non-decreasing),
``prompt_tokens`` and ``output_tokens`` (integers >= 0 and >= 1), and optionally ``group``
(a prefix group: requests sharing a system prompt). Every error names the file and line,
because a trace of a million lines is not fixed by guessing.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubellm.plan.errors import TraceError

REQUIRED = ("at", "prompt_tokens", "output_tokens")


@dataclass(frozen=True, slots=True)
class TraceRequest:
    """One request of a trace."""

    at: float
    prompt_tokens: int
    output_tokens: int
    group: str | None = None


def load_trace(path: str | Path) -> list[TraceRequest]:
    """The requests of a ``.csv`` or ``.jsonl`` trace file, checked line by line."""
    p = Path(path)
    if not p.is_file():
        raise TraceError(f"{p}: no such trace file")
    rows = _csv_rows(p) if p.suffix.lower() == ".csv" else _jsonl_rows(p)
    out: list[TraceRequest] = []
    for line, row in rows:
        req = parse_row(row, f"{p}:{line}")
        if out and req.at < out[-1].at:
            raise TraceError(f"{p}:{line}: arrival time {req.at:g} is before the previous line's "
                             f"{out[-1].at:g}; sort the trace by 'at'")
        out.append(req)
    if not out:
        raise TraceError(f"{p}: the trace has no requests")
    return out


def parse_row(row: Mapping[str, Any], where: str) -> TraceRequest:
    """One row as a request; :class:`TraceError` naming *where* and the column otherwise."""
    missing = [c for c in REQUIRED if row.get(c) in (None, "")]
    if missing:
        raise TraceError(f"{where}: missing column(s) {', '.join(missing)} (need {', '.join(REQUIRED)})")
    at = _number(row["at"], "at", where, float)
    prompt = _number(row["prompt_tokens"], "prompt_tokens", where, int)
    output = _number(row["output_tokens"], "output_tokens", where, int)
    if at < 0 or prompt < 0:
        raise TraceError(f"{where}: 'at' and 'prompt_tokens' must be >= 0, got {at:g} and {prompt}")
    if output < 1:
        raise TraceError(f"{where}: 'output_tokens' must be >= 1, got {output}")
    group = row.get("group")
    return TraceRequest(at, prompt, output, None if group in (None, "") else str(group))


def _number(value: Any, column: str, where: str, kind: type[int] | type[float]) -> Any:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise TraceError(f"{where}: {column} {value!r} is not a number") from None
    if kind is int and not number.is_integer():
        raise TraceError(f"{where}: {column} {value!r} is not a whole number of tokens")
    return kind(number)


def _csv_rows(p: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    with p.open(newline="") as f:
        reader = csv.DictReader(f)
        missing = [c for c in REQUIRED if c not in (reader.fieldnames or [])]
        if missing:
            raise TraceError(f"{p}:1: header lacks column(s) {', '.join(missing)} (need {', '.join(REQUIRED)})")
        for row in reader:
            yield reader.line_num, row


def _jsonl_rows(p: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    with p.open() as f:
        for line, text in enumerate(f, start=1):
            if not text.strip():
                continue
            try:
                row = json.loads(text)
            except json.JSONDecodeError as exc:
                raise TraceError(f"{p}:{line}: not JSON ({exc.msg})") from None
            if not isinstance(row, dict):
                raise TraceError(f"{p}:{line}: expected a JSON object, got {type(row).__name__}")
            yield line, row
