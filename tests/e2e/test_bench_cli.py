"""`kubellm bench URL ...` and `kubellm bench compare` as a user types them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from kubellm.bench import results
from kubellm.bench.testing import sim_process


def kubellm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "kubellm.cli.main", *args],
                          capture_output=True, text=True, timeout=180)


@pytest.fixture(scope="module")
def sim_url() -> object:
    with sim_process(["--model", "m", "--fixed-ttft-ms", "60", "--fixed-tpot-ms", "6"]) as url:
        yield url


def test_bench_at_a_rate_writes_json_markdown_and_plots(sim_url: str, tmp_path: Path) -> None:
    out = tmp_path / "run"
    done = kubellm("bench", sim_url, "--model", "m", "--rate", "20", "--requests", "30",
                   "--output-tokens", "10", "--slo-ttft-ms", "65", "--slo-tpot-ms", "20", "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in out.iterdir()) == [
        "latency_distributions.png", "latency_vs_load.png", "result.json", "summary.md", "throughput_vs_load.png"]
    result = results.load(out / "result.json")
    (run,) = result.runs
    assert run.load.mode == "rate" and run.load.value == 20 and len(run.records) == 30
    assert run.summary.ttft is not None and 0.060 <= run.summary.ttft.p50 < 0.070
    assert run.summary.tpot is not None and 0.0054 <= run.summary.tpot.p50 < 0.0066
    # goodput is the share within both SLOs (65 ms sits just above the known 60 ms TTFT)
    within = [r for r in run.records if (r.ttft_s or 1) <= 0.065 and (r.tpot_s or 1) <= 0.020]
    assert run.summary.goodput == len(within) / 30 and run.summary.goodput > 0.5
    assert "| TTFT |" in done.stdout and f"goodput: {run.summary.goodput:.1%}" in done.stdout
    assert (out / "summary.md").read_text().startswith("# kubellm bench: m at ")


def test_sweep_then_compare(sim_url: str, tmp_path: Path) -> None:
    for name, load in (("a", "1,4"), ("b", "2")):
        done = kubellm("bench", "run", sim_url, "--model", "m", "--concurrency", load, "--requests", "8",
                       "--output-tokens", "4", "--no-plot", "--out", str(tmp_path / name))
        assert done.returncode == 0, done.stderr
    assert [r.load.value for r in results.load(tmp_path / "a" / "result.json").runs] == [1, 4]
    done = kubellm("bench", "compare", str(tmp_path / "a" / "result.json"), str(tmp_path / "b" / "result.json"),
                   "--plot", str(tmp_path / "cmp.png"))
    assert done.returncode == 0, done.stderr
    assert "a @ 1 concurrent" in done.stdout and "a @ 4 concurrent" in done.stdout and "TTFT p50 (ms)" in done.stdout
    assert (tmp_path / "cmp.png").read_bytes()[:4] == b"\x89PNG"


def test_dataset_workload(sim_url: str, tmp_path: Path) -> None:
    data = tmp_path / "chats.jsonl"
    data.write_text("\n".join(json.dumps({"messages": [{"role": "user", "content": f"question {i}"}],
                                          "max_tokens": 3}) for i in range(4)))
    done = kubellm("bench", sim_url, "--model", "m", "--concurrency", "2", "--requests", "6",
                   "--workload", "dataset", "--dataset", str(data), "--no-plot", "--out", str(tmp_path / "d"))
    assert done.returncode == 0, done.stderr
    (run,) = results.load(tmp_path / "d" / "result.json").runs
    assert {r.output_tokens for r in run.records} == {3}


@pytest.mark.parametrize(("args", "message"), [
    (["--rate", "5", "--prompt-tokens", "9:3"], "reversed"),
    ([], "give a load"),
    (["--find-max-rate"], "needs an SLO"),
    (["--rate", "0"], "must be above 0"),
    (["--rate", "5", "--workload", "dataset"], "dataset file is needed"),
])
def test_bad_options_fail_before_any_traffic(args: list[str], message: str, tmp_path: Path) -> None:
    done = kubellm("bench", "http://127.0.0.1:9", "--model", "m", *args, "--out", str(tmp_path / "x"))
    assert done.returncode == 2
    assert message in done.stderr
    assert not (tmp_path / "x").exists()


def test_rate_search_through_the_cli(sim_url: str, tmp_path: Path) -> None:
    """Wiring of --find-max-rate: against a fixed 60 ms TTFT the SLO decides alone.
    (The bisection itself is covered in tests/unit/bench/test_bench_search.py.)"""
    met = kubellm("bench", sim_url, "--model", "m", "--find-max-rate", "--rate-low", "2", "--rate-high", "10",
                  "--requests", "10", "--slo-ttft-ms", "1000", "--no-plot", "--out", str(tmp_path / "met"))
    missed = kubellm("bench", sim_url, "--model", "m", "--find-max-rate", "--rate-low", "2", "--rate-high", "10",
                     "--requests", "10", "--slo-ttft-ms", "30", "--no-plot", "--out", str(tmp_path / "missed"))
    assert met.returncode == 0 and missed.returncode == 0, met.stderr + missed.stderr
    found = results.load(tmp_path / "met" / "result.json")
    assert found.search is not None and found.search.best_rate == 10 and [r.load.value for r in found.runs] == [10]
    none = results.load(tmp_path / "missed" / "result.json")
    assert none.search is not None and none.search.best_rate is None
    assert [r.load.value for r in none.runs] == [10, 2] and all(r.summary.goodput == 0 for r in none.runs)
    assert "Highest rate with goodput >= 90%: none found" in missed.stdout


def test_sigterm_stops_sending_finishes_in_flight_and_writes_what_ran(sim_url: str, tmp_path: Path) -> None:
    import signal
    import time

    import httpx

    def generated_tokens() -> float:
        text = httpx.get(sim_url + "/metrics").text
        lines = [l for l in text.splitlines() if l.startswith("vllm:generation_tokens_total")]
        return sum(float(l.split()[-1]) for l in lines)

    before = generated_tokens()
    process = subprocess.Popen(
        [sys.executable, "-m", "kubellm.cli.main", "bench", sim_url, "--model", "m", "--rate", "5",
         "--requests", "200", "--output-tokens", "20", "--no-plot", "--out", str(tmp_path / "r")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while generated_tokens() == before and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(1.0)  # a few requests in, 40 s of schedule left
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 0, err
    result = results.load(tmp_path / "r" / "result.json")
    assert result.interrupted is True
    (run,) = result.runs
    assert 0 < len(run.records) < 200
    assert all(r.ok and r.output_tokens == 20 for r in run.records), "in-flight requests were finished"
    assert "**Interrupted**" in (tmp_path / "r" / "summary.md").read_text()
