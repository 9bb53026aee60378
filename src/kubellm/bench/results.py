"""The JSON result file: every run's load, summary and per-request records."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from kubellm.bench.errors import ResultFileError
from kubellm.bench.records import LoadPoint, RequestRecord
from kubellm.bench.stats import Summary
from kubellm.bench.workload import WorkloadConfig


class RunResult(BaseModel):
    """One run at one offered load."""

    model_config = ConfigDict(extra="forbid")

    load: LoadPoint
    summary: Summary
    records: list[RequestRecord]


class SearchOutcome(BaseModel):
    """What the goodput-maximising rate search found."""

    model_config = ConfigDict(extra="forbid")

    min_goodput: float
    best_rate: float | None
    note: str


class BenchResult(BaseModel):
    """Everything one ``kubellm bench`` invocation measured."""

    model_config = ConfigDict(extra="forbid")

    schema_version: Literal[1] = 1
    url: str
    model: str
    workload: WorkloadConfig
    created_at: str
    runs: list[RunResult]
    search: SearchOutcome | None = None
    interrupted: bool = False  # stopped by a signal: the runs cover only what was sent


def write_atomic(path: Path, text: str) -> None:
    """Write *text* to *path* through a temporary file, so a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def save(result: BenchResult, path: Path) -> None:
    write_atomic(path, result.model_dump_json(indent=1))


def load(path: Path) -> BenchResult:
    """Read a result file written by ``save``."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise ResultFileError(f"cannot read result file {path}: {err.strerror}") from None
    try:
        return BenchResult.model_validate_json(text)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top level)"
        raise ResultFileError(
            f"{path} is not a kubellm bench result file: {where}: {first['msg']}"
        ) from None
