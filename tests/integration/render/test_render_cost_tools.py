"""spec.cost checked by the tools that consume it:

- the budget alerts pass `promtool check rules`, and `promtool test rules` shows them firing
  on kube-state-metrics series of this service's pods that spend the budget (a shared GPU
  counted at its share) and staying quiet on series that do not, or that belong to another
  service or namespace;
- the device plugin's config that time-slicing and MIG render is read by the NVIDIA device
  plugin's own config package (v0.17.4, `.tools/bin/deviceplugin-check`, built by
  scripts/setup/deviceplugin.sh): accepted, nothing dropped, and the resource it advertises
  is the one the engine pods request. The MIG manager's layout (mig-parted's format) is
  checked by the unit tests only: mig-parted's Go module is not served by the module proxy
  this workplace reaches."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from kubellm.render import render
from kubellm.spec import parse_spec

ROOT = Path(__file__).resolve().parents[3]
CHECKER = ROOT / ".tools" / "bin" / "deviceplugin-check"
POD = "small-6f7c9d8b5-x2k9q"


def objects_of(cost: dict[str, Any], **spec: Any) -> list[dict[str, Any]]:
    doc = {"apiVersion": "kubellm.dev/v1alpha1", "kind": "LLMService", "metadata": {"name": "small", "namespace": "llm"},
           "spec": {"model": {"uri": "hf://Qwen/Qwen2.5-1.5B-Instruct"}, "resources": {"accelerator": {"count": 1}},
                    "scaling": {"minReplicas": 2, "maxReplicas": 4}, "cost": cost, **spec}}
    return render(parse_spec(doc), "1.31")


@pytest.fixture(scope="module")
def promtool() -> str:
    path = shutil.which("promtool")
    assert path, "promtool missing: run scripts/setup/render.sh (Debian package prometheus)"
    return path


def requests(pod: str, resource: str, values: str, namespace: str = "llm") -> dict[str, str]:
    labels = f'container="engine",namespace="{namespace}",pod="{pod}",resource="{resource}",unit="integer"'
    return {"series": f"kube_pod_container_resource_requests{{{labels}}}", "values": values}


BUDGET = {"acceleratorHours": 20, "window": "1d"}  # warning above 16, critical above 20
WARN, SPENT = "LLMServiceAcceleratorBudgetNearlySpent", "LLMServiceAcceleratorBudgetSpent"
SHARING = {"gpuSharing": {"mode": "timeSlicing", "replicas": 4}}
# case -> (cost settings, engine settings, input series (5-minute samples), eval time, alerts expected to fire)
CASES: dict[str, tuple[dict[str, Any], dict[str, Any], list[dict[str, str]], str, set[str]]] = {
    "one-gpu-all-day-spends-24h": ({}, {}, [requests(POD, "nvidia_com_gpu", "1x320")], "26h", {WARN, SPENT}),
    "18h-only-warns": ({}, {}, [requests(POD, "nvidia_com_gpu", "1x216 _x100")], "22h", {WARN}),
    "others-pods-are-not-counted": ({}, {}, [
        requests("small-x-6f7c9d8b5-x2k9q", "nvidia_com_gpu", "8x320"),
        requests(POD, "nvidia_com_gpu", "8x320", namespace="other"),
        requests(POD, "nvidia_com_gpu_shared", "8x320"),
        requests(POD, "nvidia_com_gpu", "0x320"),
    ], "26h", set()),
    "four-shared-slices-are-one-gpu": (SHARING, {"engine": {"gpuMemoryUtilization": 0.2}}, [
        requests(f"small-6f7c9d8b5-podx{i}", "nvidia_com_gpu_shared", "1x320") for i in range(4)], "26h", {WARN, SPENT}),
    "one-shared-slice-is-a-quarter": (SHARING, {"engine": {"gpuMemoryUtilization": 0.2}}, [
        requests(POD, "nvidia_com_gpu_shared", "1x320")], "26h", set()),
}


def _cost_group(objects: list[dict[str, Any]]) -> dict[str, Any]:
    rule = next(o for o in objects if o["kind"] == "PrometheusRule")
    group: dict[str, Any] = next(g for g in rule["spec"]["groups"] if g["name"].endswith("-cost"))
    return group


def _expected(group: dict[str, Any], alert: str) -> dict[str, Any]:
    definition = next(r for r in group["rules"] if r["alert"] == alert)
    return {"exp_labels": definition["labels"], "exp_annotations": definition["annotations"]}


def _promtool_test(promtool: str, tmp_path: Path, group: dict[str, Any], series: list[dict[str, str]], at: str,
                   firing: set[str]) -> subprocess.CompletedProcess[str]:
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump({"groups": [group]}, sort_keys=True))
    checks = [{"eval_time": at, "alertname": alert, "exp_alerts": [_expected(group, alert)] if alert in firing else []}
              for alert in (WARN, SPENT)]
    tests = [{"interval": "5m", "input_series": series, "alert_rule_test": checks}]
    (tmp_path / "tests.yaml").write_text(yaml.safe_dump({"rule_files": ["rules.yaml"], "evaluation_interval": "5m",
                                                         "tests": tests}))
    return subprocess.run([promtool, "test", "rules", "tests.yaml"], capture_output=True, text=True, cwd=tmp_path)


def test_the_budget_rules_pass_promtool_check(promtool: str, tmp_path: Path) -> None:
    group = _cost_group(objects_of({**SHARING, "budget": {"acceleratorHours": 500}}, engine={"gpuMemoryUtilization": 0.2}))
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump({"groups": [group]}, sort_keys=True))
    result = subprocess.run([promtool, "check", "rules", str(tmp_path / "rules.yaml")], capture_output=True, text=True)
    assert result.returncode == 0 and "SUCCESS: 2 rules found" in result.stdout, result.stdout + result.stderr


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_budget_alerts_fire_on_spent_hours_only(case: str, promtool: str, tmp_path: Path) -> None:
    cost, spec, series, at, firing = CASES[case]
    group = _cost_group(objects_of({**cost, "budget": BUDGET}, **spec))
    result = _promtool_test(promtool, tmp_path, group, series, at, firing)
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_would_notice_a_budget_alert_that_does_not_fire(promtool: str, tmp_path: Path) -> None:
    cost, spec, series, at, _ = CASES["one-shared-slice-is-a-quarter"]
    group = _cost_group(objects_of({**cost, "budget": BUDGET}, **spec))
    assert _promtool_test(promtool, tmp_path, group, series, at, {SPENT}).returncode != 0


@pytest.fixture(scope="module")
def checker() -> Path:
    assert CHECKER.exists(), f"{CHECKER} missing: run scripts/setup/deviceplugin.sh (needs Go)"
    return CHECKER


def _check(checker: Path, tmp_path: Path, config: str) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "config.yaml"
    path.write_text(config)
    return subprocess.run([str(checker), str(path)], capture_output=True, text=True)


def _plugin_config(objects: list[dict[str, Any]]) -> str:
    config_map = next(o for o in objects if o["metadata"]["name"] == "small-device-plugin-config")
    text: str = config_map["data"]["small"]
    return text


def _requested(objects: list[dict[str, Any]]) -> set[str]:
    pod = next(o for o in objects if o["kind"] == "Deployment")["spec"]["template"]["spec"]
    return {name for name in pod["containers"][0]["resources"]["limits"] if name.startswith("nvidia.com/")}


@pytest.mark.parametrize("replicas", [2, 4, 8])
def test_the_device_plugin_reads_the_time_slicing_config_and_advertises_what_pods_request(
        replicas: int, checker: Path, tmp_path: Path) -> None:
    objects = objects_of({"gpuSharing": {"mode": "timeSlicing", "replicas": replicas}},
                         engine={"gpuMemoryUtilization": round(0.9 / replicas, 3)})
    result = _check(checker, tmp_path, _plugin_config(objects))
    assert result.returncode == 0, result.stderr
    read = json.loads(result.stdout)
    assert (read["sharing"], read["migStrategy"], read["failRequestsGreaterThanOne"]) == ("time-slicing", "none", True)
    assert read["resources"] == [{"name": "nvidia.com/gpu", "advertised": "nvidia.com/gpu.shared", "replicas": replicas}]
    assert _requested(objects) == {"nvidia.com/gpu.shared"}


@pytest.mark.parametrize("profile", ["1g.10gb", "3g.40gb"])
def test_the_device_plugin_reads_the_mig_config(profile: str, checker: Path, tmp_path: Path) -> None:
    objects = objects_of({"gpuSharing": {"mode": "mig", "migProfile": profile}})
    result = _check(checker, tmp_path, _plugin_config(objects))
    assert result.returncode == 0, result.stderr
    read = json.loads(result.stdout)
    assert (read["sharing"], read["migStrategy"]) == ("none", "mixed")  # mixed: one resource per MIG profile
    assert _requested(objects) == {f"nvidia.com/mig-{profile}"}


@pytest.mark.parametrize(("change", "error"), [
    (("renameByDefault: true", "renameByDefualt: true"), "renameByDefualt"),
    (("replicas: 4", "replicas: 1"), "replicas"),
    (("migStrategy: none", "migStrategy: mixd"), "migStrategy"),
    (("version: v1", "version: v2"), "version"),
])
def test_the_checker_refuses_what_the_plugin_would_reject_or_ignore(change: tuple[str, str], error: str, checker: Path,
                                                                    tmp_path: Path) -> None:
    objects = objects_of({"gpuSharing": {"mode": "timeSlicing", "replicas": 4}}, engine={"gpuMemoryUtilization": 0.2})
    config = _plugin_config(objects)
    assert change[0] in config
    result = _check(checker, tmp_path, config.replace(*change))
    assert result.returncode == 1 and error in result.stderr, result.stdout + result.stderr
