"""`kubellm check URL` as a user types it, against simulators started with `kubellm sim`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from kubellm.bench.testing import sim_process


def check(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "kubellm.cli.main", "check", *args],
                          capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def healthy() -> object:
    with sim_process(["--model", "m", "--fixed-ttft-ms", "20", "--fixed-tpot-ms", "2"]) as url:
        yield url


@pytest.fixture(scope="module")
def slow() -> object:
    with sim_process(["--model", "m", "--fixed-ttft-ms", "700", "--fixed-tpot-ms", "2"]) as url:
        yield url


def test_check_passes_on_a_healthy_simulator(healthy: str, tmp_path: Path) -> None:
    done = check(healthy, "--model", "m", "--requests", "20", "--json", str(tmp_path / "v.json"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "all checks passed" in done.stderr
    verdicts = json.loads((tmp_path / "v.json").read_text())
    assert verdicts["passed"] is True
    assert [v["name"] for v in verdicts["verdicts"]] == [
        "GET /v1/models", "GET /metrics", "POST /v1/completions", "streamed chat",
        "TTFT p50", "TTFT p99", "error rate", "output tokens/s"]
    assert 20 <= verdicts["summary"]["ttft"]["p50"] * 1000 < 40


def test_check_fails_on_a_slow_simulator_naming_the_ttft_threshold(slow: str) -> None:
    done = check(slow, "--requests", "8", "--concurrency", "4")
    assert done.returncode == 1
    assert "FAILED TTFT p50: expected < 500.0 ms" in done.stderr
    assert "FAILED error rate" not in done.stderr and "FAILED TTFT p99" not in done.stderr


def test_check_fails_on_an_erroring_simulator_naming_the_error_rate() -> None:
    with sim_process(["--model", "m", "--fixed-ttft-ms", "10", "--fixed-tpot-ms", "1",
                      "--error-rate", "0.3", "--error-status", "500"]) as url:
        done = check(url, "--requests", "40")
    assert done.returncode == 1
    assert "FAILED error rate: expected <= 0.10%" in done.stderr


def test_check_reads_thresholds_from_the_spec_slo(slow: str, tmp_path: Path) -> None:
    spec = tmp_path / "svc.yaml"
    spec.write_text(
        "apiVersion: kubellm.dev/v1alpha1\nkind: LLMService\nmetadata: {name: svc}\n"
        "spec:\n  model: {uri: 'sim://m'}\n  engine: {kind: sim}\n"
        "  slo: {ttftP50Ms: 100, ttftP99Ms: 800, tpotMs: 50, maxErrorRate: 0.01}\n")
    done = check(slow, "--spec", str(spec), "--requests", "8", "--concurrency", "4")
    assert done.returncode == 1
    assert "FAILED TTFT p50: expected < 100.0 ms" in done.stderr
    assert "FAILED TTFT p99" not in done.stderr  # 700 ms is under the spec's 800 ms
    assert "FAILED TPOT p99" not in done.stderr


def test_check_fails_when_the_model_is_not_served(healthy: str) -> None:
    done = check(healthy, "--model", "other")
    assert done.returncode == 1
    # the probe stops before any row of the table: it would only repeat this
    assert "model 'other' is not served at" in done.stderr and "it serves: m" in done.stderr
    assert "FAILED" not in done.stderr


def test_check_rejects_a_nonsense_threshold() -> None:
    done = check("http://127.0.0.1:9", "--max-error-rate", "2")
    assert done.returncode == 2
    assert "max_error_rate" in done.stderr


def test_check_names_what_is_wrong_with_a_bad_spec(tmp_path: Path) -> None:
    spec = tmp_path / "bad.yaml"
    spec.write_text("apiVersion: kubellm.dev/v1alpha1\nkind: LLMService\nmetadata: {name: x}\n"
                    "spec:\n  model: {uri: 'sim://m'}\n  slo: {ttftP50Ms: -5}\n")
    done = check("http://127.0.0.1:9", "--spec", str(spec))
    assert done.returncode == 2
    assert "cannot read thresholds from" in done.stderr and "ttftP50Ms" in done.stderr
