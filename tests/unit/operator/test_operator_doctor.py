"""doctor's judgement of cluster facts (pure), table-driven."""

from __future__ import annotations

from typing import Any

import pytest

from kubellm.operator.doctor import Facts, GpuPool, assess, gpu_pools
from kubellm.spec import parse_spec


def node(name: str, gpus: int, product: str | None) -> dict[str, Any]:
    labels = {"nvidia.com/gpu.product": product} if product else {}
    return {"metadata": {"name": name, "labels": labels}, "status": {"allocatable": {"nvidia.com/gpu": str(gpus)} if gpus else {}}}


def pod(node_name: str, gpus: int, phase: str = "Running") -> dict[str, Any]:
    return {"spec": {"nodeName": node_name, "containers": [{"resources": {"requests": {"nvidia.com/gpu": str(gpus)}}}]},
            "status": {"phase": phase}}


def test_pools_group_by_product_and_subtract_running_requests() -> None:
    nodes = [node("a", 8, "H100"), node("b", 8, "H100"), node("c", 2, "L4"), node("cpu", 0, None)]
    pods = [pod("a", 3), pod("b", 8, "Succeeded"), pod("c", 2)]
    assert gpu_pools(nodes, pods, "nvidia.com/gpu") == [GpuPool("H100", 2, 16, 13), GpuPool("L4", 1, 2, 0)]


def levels(facts: Facts, **kw: Any) -> dict[str, str]:
    return {f.check: f.level for f in assess(facts, **kw)}


def test_bare_cluster_warns_about_everything_missing() -> None:
    found = levels(Facts(version=(1, 30)))
    assert found["gpu-nodes"] == "warn" and found["storage-class"] == "warn" and found["kubernetes-version"] == "warn"
    assert found["crd:scaledobjects.keda.sh"] == "warn" and "device-plugin" not in found


def test_complete_cluster_is_all_ok() -> None:
    from kubellm.operator.doctor import ADDON_CRDS

    facts = Facts(version=(1, 35), pools=[GpuPool("L4", 2, 4, 4)], device_plugins=["kube-system/nvidia-device-plugin"],
                  crds=set(ADDON_CRDS), default_storage_class="standard", quota_free={"gpu": 4})
    assert set(levels(facts).values()) == {"ok"}


@pytest.mark.parametrize(
    ("accelerator", "level"),
    [({"type": "L4", "count": 1}, "ok"), ({"type": "L4", "count": 4}, "fail"), ({"type": "A100", "count": 1}, "fail"), ({"count": 2}, "ok")],
)
def test_spec_fit(accelerator: dict[str, Any], level: str) -> None:
    service = parse_spec({"apiVersion": "kubellm.dev/v1alpha1", "kind": "LLMService", "metadata": {"name": "m"},
                          "spec": {"model": {"uri": "hf://o/m"}, "resources": {"accelerator": accelerator},
                                   "engine": {"tensorParallelSize": accelerator["count"]}}})
    facts = Facts(version=(1, 34), pools=[GpuPool("L4", 2, 4, 2)])
    assert levels(facts, service=service)["spec-fit"] == level
