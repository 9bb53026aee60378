"""Cost settings (spec.cost) rendered: spot affinity and tolerations per provider, the serving
PriorityClass, the disruption floor, the NVIDIA device plugin's sharing config with the
resources pods then request, and the accelerator-hour budget alerts; bad cost settings name
the field. Every object validates against Kubernetes 1.31's schema (strict) or its CRD."""

from __future__ import annotations

from typing import Any

import kubernetes_validate
import pytest
import yaml

from kubellm.render import render
from kubellm.spec import SpecError, parse_spec
from tests.unit.render.test_render_kubernetes_schemas import crd_validator

BASE: dict[str, Any] = {
    "model": {"uri": "hf://Qwen/Qwen2.5-1.5B-Instruct"},
    "resources": {"accelerator": {"type": "nvidia-l4", "count": 1}},
    "scaling": {"minReplicas": 2, "maxReplicas": 6},
}


def service(cost: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "kubellm.dev/v1alpha1", "kind": "LLMService",
            "metadata": {"name": "small", "namespace": "llm"}, "spec": {**BASE, **spec, "cost": cost}}


def objects_of(cost: dict[str, Any], **spec: Any) -> list[dict[str, Any]]:
    return render(parse_spec(service(cost, **spec)), "1.31")


def one(objects: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    found = [o for o in objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]
    assert len(found) == 1, [o["metadata"]["name"] for o in found]
    return found[0]


def engine_pod(objects: list[dict[str, Any]]) -> dict[str, Any]:
    pod: dict[str, Any] = one(objects, "Deployment")["spec"]["template"]["spec"]
    return pod


GPU_TAINT = {"effect": "NoSchedule", "key": "nvidia.com/gpu", "operator": "Exists"}


@pytest.mark.parametrize(("spot", "label", "values", "tolerations"), [
    ({"provider": "gke"}, "cloud.google.com/gke-spot", ["true"],
     [{"effect": "NoSchedule", "key": "cloud.google.com/gke-spot", "operator": "Equal", "value": "true"}]),
    ({"provider": "eks"}, "eks.amazonaws.com/capacityType", ["SPOT"], []),
    ({"provider": "karpenter"}, "karpenter.sh/capacity-type", ["spot"], []),
    ({"provider": "aks"}, "kubernetes.azure.com/scalesetpriority", ["spot"],
     [{"effect": "NoSchedule", "key": "kubernetes.azure.com/scalesetpriority", "operator": "Equal", "value": "spot"}]),
    ({"provider": "custom", "nodeLabel": "node.example.com/lifecycle", "spotValues": ["spot", "preemptible"],
      "tolerations": [{"key": "lifecycle", "operator": "Equal", "value": "spot", "effect": "NoExecute"}]},
     "node.example.com/lifecycle", ["spot", "preemptible"],
     [{"effect": "NoExecute", "key": "lifecycle", "operator": "Equal", "value": "spot"}]),
    ({"provider": "eks", "tolerations": [{"key": "spot", "operator": "Exists"}]}, "eks.amazonaws.com/capacityType",
     ["SPOT"], [{"key": "spot", "operator": "Exists"}]),
])
def test_spot_is_preferred_on_demand_is_the_fallback_and_the_spot_taint_tolerated(
        spot: dict[str, Any], label: str, values: list[str], tolerations: list[dict[str, str]]) -> None:
    pod = engine_pod(objects_of({"spot": spot}))
    terms = pod["affinity"]["nodeAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
    assert terms == [
        {"preference": {"matchExpressions": [{"key": label, "operator": "In", "values": values}]}, "weight": 100},
        {"preference": {"matchExpressions": [{"key": label, "operator": "NotIn", "values": values}]}, "weight": 1},
    ]
    assert "requiredDuringSchedulingIgnoredDuringExecution" not in pod["affinity"]["nodeAffinity"]
    assert pod["tolerations"] == [GPU_TAINT, *tolerations]


def test_spot_weights_are_configurable_and_a_zero_on_demand_weight_drops_the_term() -> None:
    pod = engine_pod(objects_of({"spot": {"provider": "gke", "spotWeight": 80, "onDemandWeight": 0}}))
    terms = pod["affinity"]["nodeAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
    assert [t["weight"] for t in terms] == [80]


def test_spot_tolerations_add_to_the_specs_own() -> None:
    own = {"tolerations": [{"key": "dedicated", "operator": "Equal", "value": "llm", "effect": "NoSchedule"}]}
    pod = engine_pod(objects_of({"spot": {"provider": "aks"}}, resources={**BASE["resources"], **own}))
    assert [t["key"] for t in pod["tolerations"]] == ["dedicated", "kubernetes.azure.com/scalesetpriority"]


def test_the_priority_class_is_rendered_cluster_scoped_and_the_engines_run_at_it() -> None:
    objects = objects_of({"priorityClass": {"value": 2000000, "preemptionPolicy": "Never"}})
    priority = one(objects, "PriorityClass")
    assert priority["metadata"]["name"] == "small-serving" and "namespace" not in priority["metadata"]
    assert (priority["value"], priority["preemptionPolicy"], priority["globalDefault"]) == (2000000, "Never", False)
    assert engine_pod(objects)["priorityClassName"] == "small-serving"
    loader = one(objects, "Job")["spec"]["template"]["spec"]
    assert "priorityClassName" not in loader  # only serving pre-empts; the loader is batch work itself
    assert objects.index(priority) < objects.index(one(objects, "Deployment"))


@pytest.mark.parametrize(("cost", "scaling", "budget"), [
    ({}, {"minReplicas": 2, "maxReplicas": 6}, {"maxUnavailable": 1}),
    ({"spot": {"provider": "gke", "minAvailable": 2}}, {"minReplicas": 3, "maxReplicas": 6}, {"minAvailable": 2}),
    ({"spot": {"provider": "gke", "minAvailable": 1}}, {"minReplicas": 2}, {"minAvailable": 1}),
    ({"spot": {"provider": "gke"}}, {"minReplicas": 3}, {"maxUnavailable": 1}),
])
def test_the_disruption_budget_keeps_the_spot_floor(cost: dict[str, Any], scaling: dict[str, Any], budget: dict[str, int]) -> None:
    pdb = one(objects_of(cost, scaling=scaling), "PodDisruptionBudget")
    assert {k: v for k, v in pdb["spec"].items() if k != "selector"} == budget


def test_a_single_replica_without_a_floor_gets_no_budget() -> None:
    objects = objects_of({"spot": {"provider": "gke"}}, scaling={"minReplicas": 1})
    assert not [o for o in objects if o["kind"] == "PodDisruptionBudget"]


def _plugin_config(objects: list[dict[str, Any]], key: str = "small") -> dict[str, Any]:
    config_map = one(objects, "ConfigMap", "small-device-plugin-config")
    assert config_map["metadata"]["namespace"] == "gpu-operator"
    config: dict[str, Any] = yaml.safe_load(config_map["data"][key])
    return config


TIME_SLICING = {"gpuSharing": {"mode": "timeSlicing", "replicas": 4}}


def test_time_slicing_renders_the_device_plugin_config_and_pods_request_the_shared_gpu() -> None:
    objects = objects_of(TIME_SLICING, engine={"gpuMemoryUtilization": 0.22}, security={"gpuQuota": "8"})
    assert _plugin_config(objects) == {
        "version": "v1", "flags": {"migStrategy": "none"},
        "sharing": {"timeSlicing": {"failRequestsGreaterThanOne": True, "renameByDefault": True,
                                    "resources": [{"name": "nvidia.com/gpu", "replicas": 4}]}},
    }
    pod = engine_pod(objects)
    limits = pod["containers"][0]["resources"]["limits"]
    assert limits["nvidia.com/gpu.shared"] == "1" and "nvidia.com/gpu" not in limits
    assert GPU_TAINT in pod["tolerations"]  # the node is still tainted with the plain resource
    assert one(objects, "ResourceQuota")["spec"]["hard"] == {"requests.nvidia.com/gpu.shared": "8"}
    assert "--gpu-memory-utilization" in " ".join(pod["containers"][0]["args"])


@pytest.mark.parametrize(("profile", "instances"), [("1g.10gb", 7), ("2g.20gb", 3), ("3g.40gb", 2), ("4g.40gb", 1),
                                                    ("7g.80gb", 1), ("1g.20gb+me", 7)])
def test_mig_renders_the_mixed_strategy_the_layout_and_the_profile_request(profile: str, instances: int) -> None:
    objects = objects_of({"gpuSharing": {"mode": "mig", "migProfile": profile, "configName": "llm-mig"}})
    assert _plugin_config(objects, "llm-mig") == {"version": "v1", "flags": {"migStrategy": "mixed"}}
    layout = yaml.safe_load(one(objects, "ConfigMap", "small-mig-config")["data"]["config.yaml"])
    assert layout == {"version": "v1", "mig-configs": {"llm-mig": [
        {"devices": "all", "mig-enabled": True, "mig-devices": {profile: instances}}]}}
    limits = engine_pod(objects)["containers"][0]["resources"]["limits"]
    assert limits[f"nvidia.com/mig-{profile}"] == "1"


def _budget_rules(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    groups = one(objects, "PrometheusRule")["spec"]["groups"]
    cost = [g for g in groups if g["name"] == "kubellm-small-cost"]
    assert len(cost) == 1
    rules: list[dict[str, Any]] = cost[0]["rules"]
    return rules


@pytest.mark.parametrize(("cost", "spec", "resource", "share"), [
    ({}, {}, "nvidia_com_gpu", ""),
    (TIME_SLICING, {"engine": {"gpuMemoryUtilization": 0.2}}, "nvidia_com_gpu_shared", " * 0.25"),
    ({"gpuSharing": {"mode": "mig", "migProfile": "3g.40gb"}}, {}, "nvidia_com_mig_3g_40gb", " * 0.428571"),
    ({"gpuSharing": {"mode": "mig", "migProfile": "1g.20gb+me"}}, {}, "nvidia_com_mig_1g_20gb_me", " * 0.142857"),
])
def test_the_budget_counts_the_requested_accelerators_share(cost: dict[str, Any], spec: dict[str, Any],
                                                             resource: str, share: str) -> None:
    budget = {"acceleratorHours": 500, "window": "7d"}
    warn, spent = _budget_rules(objects_of({**cost, "budget": budget}, **spec))
    used = ('sum_over_time(sum(kube_pod_container_resource_requests{namespace="llm",resource="' + resource
            + '",pod=~"(small)-[a-z0-9]{1,10}-[a-z0-9]{5}"})[7d:5m]) / 12' + share)
    assert (warn["alert"], warn["expr"], warn["labels"]["severity"]) == (
        "LLMServiceAcceleratorBudgetNearlySpent", f"{used} > 400", "warning")
    assert (spent["alert"], spent["expr"], spent["labels"]["severity"]) == (
        "LLMServiceAcceleratorBudgetSpent", f"{used} > 500", "critical")


def test_the_budget_renders_even_with_the_other_alerts_off_and_selects_multinode_pods() -> None:
    multinode = {"serving": {"mode": "multinode", "multinode": {"nodes": 2}}, "engine": {"tensorParallelSize": 1,
                 "pipelineParallelSize": 2}, "observability": {"alerts": False}}
    objects = objects_of({"budget": {"acceleratorHours": 100}}, **multinode)
    groups = one(objects, "PrometheusRule")["spec"]["groups"]
    assert [g["name"] for g in groups] == ["kubellm-small-cost"]
    assert 'pod=~"(small)-[0-9]+(-[0-9]+)?"' in groups[0]["rules"][0]["expr"]
    assert "[30d:5m]" in groups[0]["rules"][0]["expr"]


def test_everything_at_once_validates_against_its_schemas() -> None:
    cost = {"spot": {"provider": "gke", "minAvailable": 1}, "priorityClass": {}, **TIME_SLICING,
            "budget": {"acceleratorHours": 500}}
    objects = objects_of(cost, engine={"gpuMemoryUtilization": 0.2})
    assert {"PriorityClass", "ConfigMap", "PodDisruptionBudget", "PrometheusRule"} <= {o["kind"] for o in objects}
    for obj in objects:
        if obj["apiVersion"].startswith(("keda.sh", "monitoring.coreos.com")):
            errors = list(crd_validator(obj).iter_errors(obj))
            assert not errors, [e.message for e in errors]
        else:
            kubernetes_validate.validate(obj, "1.31", strict=True)


@pytest.mark.parametrize(("cost", "spec", "path", "word"), [
    ({"spot": {"provider": "custom"}}, {}, "spec.cost.spot.nodeLabel", "spotValues"),
    ({"spot": {"provider": "gke", "spotWeight": 10, "onDemandWeight": 10}}, {}, "spec.cost.spot.onDemandWeight", "below"),
    ({"spot": {"provider": "gke", "minAvailable": 3}}, {}, "spec.cost.spot.minAvailable", "at most 1"),
    ({"spot": {"provider": "gke", "minAvailable": 2}}, {}, "spec.cost.spot.minAvailable", "minReplicas to 3"),
    ({"spot": {"provider": "gke", "minAvailable": 1}}, {"scaling": {"minReplicas": 1}}, "spec.cost.spot.minAvailable",
     "raise spec.scaling.minReplicas to 2"),
    ({"spot": {"provider": "gke", "minAvailable": 1}}, {"security": {"podDisruptionBudget": False}},
     "spec.cost.spot.minAvailable", "podDisruptionBudget"),
    ({"spot": {"provider": "gce"}}, {}, "spec.cost.spot.provider", "gke"),
    ({"spot": {"provider": "gke", "spotWeight": 101}}, {}, "spec.cost.spot.spotWeight", "100"),
    ({"priorityClass": {}}, {"resources": {"accelerator": {"count": 1}, "priorityClassName": "high"}},
     "spec.cost.priorityClass", "priorityClassName"),
    ({"priorityClass": {"value": 2000000000}}, {}, "spec.cost.priorityClass.value", "1000000000"),
    ({"gpuSharing": {"mode": "mig"}}, {}, "spec.cost.gpuSharing.migProfile", "1g.10gb"),
    ({"gpuSharing": {"mode": "mig", "migProfile": "1g.10g"}}, {}, "spec.cost.gpuSharing.migProfile", "pattern"),
    ({"gpuSharing": {"mode": "timeSlicing", "migProfile": "1g.10gb"}}, {"engine": {"gpuMemoryUtilization": 0.2}},
     "spec.cost.gpuSharing.migProfile", "mig"),
    ({"gpuSharing": {"mode": "timeSlicing", "replicas": 1}}, {}, "spec.cost.gpuSharing.replicas", "2"),
    (TIME_SLICING, {}, "spec.engine.gpuMemoryUtilization", "0.25"),
    (TIME_SLICING, {"engine": {"gpuMemoryUtilization": 0.5}}, "spec.engine.gpuMemoryUtilization", "0.25"),
    ({"gpuSharing": {"mode": "mig", "migProfile": "1g.10gb"}}, {"resources": {"accelerator": {"count": 2}},
     "engine": {"tensorParallelSize": 2}}, "spec.cost.gpuSharing.mode", "count to 1"),
    ({"gpuSharing": {"mode": "mig", "migProfile": "1g.10gb"}},
     {"resources": {"accelerator": {"count": 1, "resourceName": "amd.com/gpu"}}}, "spec.cost.gpuSharing.mode", "nvidia.com/gpu"),
    ({"budget": {"acceleratorHours": 10}}, {"engine": {"kind": "sim"}, "model": {"uri": "sim://m"},
     "resources": {"accelerator": {"count": 0}}}, "spec.cost.budget", "accelerators"),
    ({"budget": {"acceleratorHours": 0}}, {}, "spec.cost.budget.acceleratorHours", "greater than 0"),
    ({"budget": {"acceleratorHours": 10, "window": "2w"}}, {}, "spec.cost.budget.window", "30d"),
])
def test_bad_cost_settings_name_the_field_and_a_fix(cost: dict[str, Any], spec: dict[str, Any], path: str, word: str) -> None:
    with pytest.raises(SpecError) as info:
        parse_spec(service(cost, **spec))
    issue = next((i for i in info.value.issues if i.path == path), None)
    assert issue is not None, [i.render() for i in info.value.issues]
    assert word in issue.message + issue.hint, issue.render()


def test_the_kserve_target_keeps_the_priority_class_and_sharing_and_reports_what_it_loses() -> None:
    from kubellm.render.targets.select import render_target

    cost = {"spot": {"provider": "gke", "minAvailable": 1}, "priorityClass": {}, **TIME_SLICING,
            "budget": {"acceleratorHours": 100}}
    rendered = render_target(parse_spec(service(cost, engine={"gpuMemoryUtilization": 0.2})), "kserve", "1.31")
    kinds = {o["kind"] for o in rendered.objects}
    assert {"PriorityClass", "ConfigMap"} <= kinds  # the predictor's priorityClassName must exist
    predictor = next(o for o in rendered.objects if o["kind"] == "InferenceService")["spec"]["predictor"]
    assert predictor["priorityClassName"] == "small-serving" and "affinity" in predictor
    assert {u.field for u in rendered.unexpressed} >= {"cost.spot.minAvailable", "cost.budget"}
