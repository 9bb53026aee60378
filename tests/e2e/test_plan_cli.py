"""`kubellm plan SPEC --trace FILE` as a user types it: the plan, the written spec, bad input."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

from kubellm.spec.load import load_spec

SPEC = """apiVersion: kubellm.dev/v1alpha1
kind: LLMService
metadata: {name: llama-8b}
spec:
  model: {uri: hf://meta-llama/Llama-3.1-8B-Instruct}
  resources:
    accelerator: {type: nvidia-h100, count: 1}
  scaling: {minReplicas: 1, maxReplicas: 4}
"""


def kubellm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "kubellm.cli.main", *args],
                          capture_output=True, text=True, timeout=300)


def files(tmp_path: Path, rows: list[str]) -> tuple[Path, Path]:
    spec, trace = tmp_path / "svc.yaml", tmp_path / "trace.csv"
    spec.write_text(SPEC)
    trace.write_text("at,prompt_tokens,output_tokens\n" + "\n".join(rows) + "\n")
    return spec, trace


def test_plan_recommends_and_writes_a_scaling_block_that_loads(tmp_path: Path) -> None:
    spec, trace = files(tmp_path, [f"{i * 0.5},{300 + i % 7 * 50},{40 + i % 5 * 10}" for i in range(400)])
    out = tmp_path / "planned.yaml"
    done = kubellm("plan", str(spec), "--trace", str(trace), "--slo", "ttftP99Ms=1500", "--slo", "tpotMs=60",
                   "--no-peers", "--write", str(out))
    assert done.returncode == 0, done.stderr
    assert "recommended: kubellm rate=" in done.stdout
    assert f"wrote {out}" in done.stdout
    scaling = load_spec(out).spec.scaling
    assert scaling.signal == "runningRequests" and scaling.max_replicas == 4
    assert scaling.polling_interval_seconds == 5  # the decision interval the plan simulated
    assert yaml.safe_load(out.read_text())["spec"]["scaling"]["target"] >= 1


def test_an_unmeetable_slo_says_so_and_writes_nothing(tmp_path: Path) -> None:
    spec, trace = files(tmp_path, [f"{i * 0.1},{2000},{50}" for i in range(300)])
    out = tmp_path / "planned.yaml"
    done = kubellm("plan", str(spec), "--trace", str(trace), "--slo", "ttftP99Ms=1", "--no-peers", "--write", str(out))
    assert done.returncode == 0, done.stderr
    assert "no setting meets the SLO within maxReplicas 4; closest: kubellm" in done.stdout
    assert not out.exists()


def test_bad_trace_line_and_bad_parameter_are_usage_errors_naming_where(tmp_path: Path) -> None:
    spec, trace = files(tmp_path, ["0,10,5", "3,10,5", "2,10,5"])
    done = kubellm("plan", str(spec), "--trace", str(trace))
    assert done.returncode == 2
    assert f"{trace}:4: arrival time 2 is before" in done.stderr
    spec, trace = files(tmp_path, ["0,10,5"])
    done = kubellm("plan", str(spec), "--trace", str(trace), "--set", "kpa.panicThreshold=50")
    assert done.returncode == 2
    assert "policies.kpa.panicThreshold" in done.stderr and "[1.1, 10]" in done.stderr


def test_plan_with_spot_writes_a_cost_block_that_renders(tmp_path: Path) -> None:
    spec, trace = files(tmp_path, [f"{i * 0.5},{300 + i % 7 * 50},{40 + i % 5 * 10}" for i in range(400)])
    out = tmp_path / "planned.yaml"
    done = kubellm("plan", str(spec), "--trace", str(trace), "--no-peers", "--spot", "gke", "--write", str(out))
    assert done.returncode == 0, done.stderr
    assert "spot:" in done.stdout and "budget: spec.cost.budget alerts above" in done.stdout
    cost = load_spec(out).spec.cost
    assert cost.spot is not None and cost.spot.provider == "gke" and cost.budget is not None
    rendered = kubellm("render", str(out))
    assert rendered.returncode == 0, rendered.stderr
    kinds = {d["kind"] for d in yaml.safe_load_all(rendered.stdout)}
    assert {"PriorityClass", "PrometheusRule"} <= kinds and "cloud.google.com/gke-spot" in rendered.stdout


def test_an_unknown_spot_provider_is_a_usage_error(tmp_path: Path) -> None:
    spec, trace = files(tmp_path, ["0,10,5", "1,10,5"])
    done = kubellm("plan", str(spec), "--trace", str(trace), "--spot", "gce")
    assert done.returncode == 2 and "--spot 'gce': one of gke, eks, karpenter, aks" in done.stderr, done.stderr
