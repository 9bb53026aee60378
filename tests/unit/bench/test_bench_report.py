from __future__ import annotations

from pathlib import Path

import pytest

from kubellm.bench import compare, report, results
from kubellm.bench.errors import ResultFileError
from kubellm.bench.records import SLO, LoadPoint
from kubellm.bench.results import BenchResult, RunResult
from kubellm.bench.stats import summarize
from kubellm.bench.workload import WorkloadConfig

from .conftest import failed_record, ok_record


def make_result(ttft: float, rates: tuple[float, ...] = (2.0,)) -> BenchResult:
    runs = []
    for rate in rates:
        records = [ok_record(i, start=i * 0.1, ttft=ttft) for i in range(9)] + [failed_record(9)]
        runs.append(RunResult(load=LoadPoint(mode="rate", value=rate),
                              summary=summarize(records, SLO(ttft_s=0.2)), records=records))
    return BenchResult(url="http://127.0.0.1:1", model="m", workload=WorkloadConfig(),
                       created_at="2026-01-01T00:00:00+00:00", runs=runs)


def test_markdown_shows_the_figures() -> None:
    text = report.markdown(make_result(0.15), ["latency_vs_load.png"])
    assert "| TTFT | 150.0 | 150.0 | 150.0 | 150.0 | 150.0 |" in text
    assert "requests: 10 (9 completed, 1 failed)" in text
    assert "error rate: 10.00% (http_503: 1)" in text
    assert "goodput: 90.0% of requests within TTFT <= 200.0 ms (" in text
    assert "![latency_vs_load.png](latency_vs_load.png)" in text


def test_result_file_round_trips(tmp_path: Path) -> None:
    result = make_result(0.1)
    results.save(result, tmp_path / "r.json")
    assert results.load(tmp_path / "r.json") == result
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


@pytest.mark.parametrize(("content", "fragment"), [("{", "not a kubellm bench result"),
                                                   ('{"url": 1}', "not a kubellm bench result")])
def test_bad_result_files_are_named(tmp_path: Path, content: str, fragment: str) -> None:
    (tmp_path / "r.json").write_text(content)
    with pytest.raises(ResultFileError, match=fragment):
        results.load(tmp_path / "r.json")
    with pytest.raises(ResultFileError, match="cannot read"):
        results.load(tmp_path / "missing.json")


def test_compare_table_puts_runs_side_by_side(tmp_path: Path) -> None:
    results.save(make_result(0.1), tmp_path / "fast.json")
    results.save(make_result(0.3, rates=(1.0, 4.0)), tmp_path / "slow.json")
    rows = compare.table(compare.labeled_summaries([tmp_path / "fast.json", tmp_path / "slow.json"]))
    assert rows[0] == ["", "fast", "slow @ 1 req/s", "slow @ 4 req/s"]
    ttft = next(r for r in rows if r[0] == "TTFT p50 (ms)")
    goodput = next(r for r in rows if r[0] == "goodput")
    assert ttft[1:] == ["100.0", "300.0", "300.0"]
    assert goodput[1:] == ["90.0%", "0.0%", "0.0%"]
