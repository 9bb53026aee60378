"""The rendered alert rules pass `promtool check rules` (every example's PrometheusRule), and
`promtool test rules` shows each alert firing on series that should fire it and staying quiet
on series that should not: every alert on the hf-autoscale example (SLO: TTFT p50 300 ms, p99
1500 ms, TPOT 60 ms, errors 1 %), and the pods-not-ready alert on each workload variant
(multinode StatefulSets, argoCanary Rollout, disaggregated and gatewayCanary Deployments)."""

from __future__ import annotations

import functools
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from kubellm.render import render
from kubellm.spec import load_spec

ROOT = Path(__file__).resolve().parents[3]
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))
SEL = 'app_kubernetes_io_instance="llama-8b",namespace="llm"'


def _hist(metric: str, buckets: dict[str, str]) -> list[dict[str, str]]:
    return [{"series": f'{metric}_bucket{{{SEL},le="{le}"}}', "values": v} for le, v in buckets.items()]


TTFT = "vllm:time_to_first_token_seconds"
TPOT = "vllm:time_per_output_token_seconds"
# alert -> (series that fire it, series that must not, evaluation time)
CASES: dict[str, tuple[list[dict[str, str]], list[dict[str, str]], str]] = {
    "LLMServiceHighErrorRate": (
        [{"series": f'http_requests_total{{{SEL},status="2xx"}}', "values": "0+90x30"},
         {"series": f'http_requests_total{{{SEL},status="5xx"}}', "values": "0+10x30"}],
        [{"series": f'http_requests_total{{{SEL},status="2xx"}}', "values": "0+199x30"},
         {"series": f'http_requests_total{{{SEL},status="5xx"}}', "values": "0+1x30"}],
        "20m",
    ),
    "LLMServiceTTFTP99High": (
        _hist(TTFT, {"0.1": "0+0x30", "1": "0+0x30", "2.5": "0+10x30", "+Inf": "0+10x30"}),
        _hist(TTFT, {"0.1": "0+9x30", "1": "0+10x30", "2.5": "0+10x30", "+Inf": "0+10x30"}),
        "20m",
    ),
    "LLMServiceTTFTP50High": (
        _hist(TTFT, {"0.1": "0+0x30", "1": "0+10x30", "2.5": "0+10x30", "+Inf": "0+10x30"}),
        _hist(TTFT, {"0.1": "0+10x30", "1": "0+10x30", "2.5": "0+10x30", "+Inf": "0+10x30"}),
        "20m",
    ),
    "LLMServiceLatencyP99High": (
        _hist(TPOT, {"0.05": "0+0x30", "0.1": "0+10x30", "+Inf": "0+10x30"}),
        _hist(TPOT, {"0.05": "0+10x30", "0.1": "0+10x30", "+Inf": "0+10x30"}),
        "20m",
    ),
    "LLMServiceKVCacheNearFull": (
        [{"series": f"vllm:kv_cache_usage_perc{{{SEL},pod=\"a\"}}", "values": "0.97x30"}],
        [{"series": f"vllm:kv_cache_usage_perc{{{SEL},pod=\"a\"}}", "values": "0.6x30"}],
        "20m",
    ),
    "LLMServiceQueueGrowing": (
        [{"series": f"vllm:num_requests_waiting{{{SEL}}}", "values": "0+2x30"}],
        [{"series": f"vllm:num_requests_waiting{{{SEL}}}", "values": "50x30"}],
        "25m",
    ),
    "LLMServicePodsNotReady": (
        [{"series": 'kube_deployment_status_replicas_unavailable{namespace="llm",deployment="llama-8b"}', "values": "1x30"}],
        [{"series": 'kube_deployment_status_replicas_unavailable{namespace="llm",deployment="llama-8b"}', "values": "0x30"}],
        "20m",
    ),
}


@functools.cache
def _example_rule(example: str) -> dict[str, Any] | None:
    objects = render(load_spec(ROOT / "examples" / f"{example}.yaml"))
    return next((o for o in objects if o["kind"] == "PrometheusRule"), None)


@pytest.fixture(scope="module")
def rule() -> dict[str, Any]:
    found = _example_rule("hf-autoscale")
    assert found is not None
    return found


@pytest.fixture(scope="module")
def promtool() -> str:
    path = shutil.which("promtool")
    assert path, "promtool missing: run scripts/setup/render.sh (Debian package prometheus)"
    return path


def _rules_file(rule: dict[str, Any], tmp_path: Path) -> Path:
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}, sort_keys=True))
    return path


def _expected(rule: dict[str, Any], alert: str) -> dict[str, Any]:
    definition = next(r for g in rule["spec"]["groups"] for r in g["rules"] if r["alert"] == alert)
    return {"exp_labels": definition["labels"], "exp_annotations": definition["annotations"]}


@pytest.mark.parametrize("example", [p.stem for p in EXAMPLES])
def test_alert_rules_pass_promtool_check(example: str, promtool: str, tmp_path: Path) -> None:
    rule = _example_rule(example)
    if rule is None:  # only a spec that turns alerts off may render no PrometheusRule
        assert not load_spec(ROOT / "examples" / f"{example}.yaml").spec.observability.alerts, example
        return
    result = subprocess.run([promtool, "check", "rules", str(_rules_file(rule, tmp_path))], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(CASES)} rules found" in result.stdout


def test_every_alert_fires_on_bad_series_and_stays_quiet_on_good_ones(rule: dict[str, Any], promtool: str, tmp_path: Path) -> None:
    alerts = {r["alert"] for g in rule["spec"]["groups"] for r in g["rules"]}
    assert alerts == set(CASES)
    tests = []
    for alert, (firing, quiet, at) in CASES.items():
        tests.append({"interval": "1m", "input_series": firing,
                      "alert_rule_test": [{"eval_time": at, "alertname": alert, "exp_alerts": [_expected(rule, alert)]}]})
        tests.append({"interval": "1m", "input_series": quiet,
                      "alert_rule_test": [{"eval_time": at, "alertname": alert, "exp_alerts": []}]})
    _rules_file(rule, tmp_path)
    test_file = tmp_path / "tests.yaml"
    test_file.write_text(yaml.safe_dump({"rule_files": ["rules.yaml"], "evaluation_interval": "1m", "tests": tests}))
    result = subprocess.run([promtool, "test", "rules", str(test_file)], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_would_notice_an_alert_that_does_not_fire(rule: dict[str, Any], promtool: str, tmp_path: Path) -> None:
    """The harness itself can fail: quiet series with an expected alert must be reported."""
    _rules_file(rule, tmp_path)
    _, quiet, at = CASES["LLMServiceKVCacheNearFull"]
    tests = [{"interval": "1m", "input_series": quiet, "alert_rule_test": [
        {"eval_time": at, "alertname": "LLMServiceKVCacheNearFull", "exp_alerts": [_expected(rule, "LLMServiceKVCacheNearFull")]}]}]
    test_file = tmp_path / "tests.yaml"
    test_file.write_text(yaml.safe_dump({"rule_files": ["rules.yaml"], "evaluation_interval": "1m", "tests": tests}))
    result = subprocess.run([promtool, "test", "rules", str(test_file)], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode != 0


def _series(metric: str, values: str, **labels: str) -> dict[str, str]:
    text = ",".join(f'{k}="{v}"' for k, v in labels.items())
    return {"series": f"{metric}{{{text}}}", "values": values}


STS_WANT, STS_READY = "kube_statefulset_replicas", "kube_statefulset_status_replicas_ready"
ROLLOUT = "rollout_info_replicas_unavailable"
DEPLOY = "kube_deployment_status_replicas_unavailable"


def _sts(name: str, want: int, ready: int, namespace: str = "llm") -> list[dict[str, str]]:
    return [_series(STS_WANT, f"{want}x30", namespace=namespace, statefulset=name),
            _series(STS_READY, f"{ready}x30", namespace=namespace, statefulset=name)]


# example -> [(case, input series, whether LLMServicePodsNotReady fires)]. Each quiet case also
# holds unready workloads that are not this service's (another namespace, a longer name).
NOT_READY: dict[str, list[tuple[str, list[dict[str, str]], bool]]] = {
    # LeaderWorkerSet llama-70b: leaders in StatefulSet llama-70b, group i's workers in llama-70b-<i>
    "llama-70b-multinode": [
        ("worker-not-ready", _sts("llama-70b", 1, 1) + _sts("llama-70b-0", 1, 0), True),
        ("leader-not-ready", _sts("llama-70b", 1, 0) + _sts("llama-70b-0", 1, 1), True),
        ("all-ready", _sts("llama-70b", 1, 1) + _sts("llama-70b-0", 1, 1)
         + _sts("llama-70b-v2", 1, 0) + _sts("llama-70b-v2-0", 1, 0) + _sts("llama-70b", 1, 0, namespace="other"), False),
    ],
    "canary-argo": [
        ("rollout-unavailable", [_series(ROLLOUT, "1x30", namespace="llm", name="gemma-9b")], True),
        ("rollout-available", [_series(ROLLOUT, "0x30", namespace="llm", name="gemma-9b"),
                               _series(ROLLOUT, "2x30", namespace="llm", name="gemma-9b-v2"),
                               _series(ROLLOUT, "2x30", namespace="other", name="gemma-9b")], False),
    ],
    "disaggregated": [
        ("prefill-unavailable", [_series(DEPLOY, "1x30", namespace="llm", deployment="qwen-32b-pd-prefill"),
                                 _series(DEPLOY, "0x30", namespace="llm", deployment="qwen-32b-pd-decode")], True),
        ("decode-unavailable", [_series(DEPLOY, "0x30", namespace="llm", deployment="qwen-32b-pd-prefill"),
                                _series(DEPLOY, "2x30", namespace="llm", deployment="qwen-32b-pd-decode")], True),
        ("both-available", [_series(DEPLOY, "0x30", namespace="llm", deployment="qwen-32b-pd-prefill"),
                            _series(DEPLOY, "0x30", namespace="llm", deployment="qwen-32b-pd-decode"),
                            _series(DEPLOY, "1x30", namespace="llm", deployment="qwen-32b-pd"),
                            _series(DEPLOY, "1x30", namespace="llm", deployment="qwen-32b-pd-prefill-old"),
                            _series(DEPLOY, "1x30", namespace="other", deployment="qwen-32b-pd-decode")], False),
    ],
    "canary-gateway": [
        ("canary-unavailable", [_series(DEPLOY, "0x30", namespace="llm", deployment="mistral-canary"),
                                _series(DEPLOY, "1x30", namespace="llm", deployment="mistral-canary-canary")], True),
        ("both-available", [_series(DEPLOY, "0x30", namespace="llm", deployment="mistral-canary"),
                            _series(DEPLOY, "0x30", namespace="llm", deployment="mistral-canary-canary"),
                            _series(DEPLOY, "1x30", namespace="llm", deployment="mistral-canary-canary-old")], False),
    ],
}


@pytest.mark.parametrize("example", sorted(NOT_READY))
def test_pods_not_ready_fires_on_this_variants_series_only(example: str, promtool: str, tmp_path: Path) -> None:
    rule = _example_rule(example)
    assert rule is not None
    alert = "LLMServicePodsNotReady"
    tests = [{"name": f"{example}/{case}", "interval": "1m", "input_series": series,
              "alert_rule_test": [{"eval_time": "20m", "alertname": alert, "exp_alerts": [_expected(rule, alert)] if fires else []}]}
             for case, series, fires in NOT_READY[example]]
    _rules_file(rule, tmp_path)
    test_file = tmp_path / "tests.yaml"
    test_file.write_text(yaml.safe_dump({"rule_files": ["rules.yaml"], "evaluation_interval": "1m", "tests": tests}))
    result = subprocess.run([promtool, "test", "rules", str(test_file)], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
