"""Node objects for kwok: simulated GPU nodes with the labels and taints GPU clusters carry."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

KWOK_ANNOTATION = "kwok.x-k8s.io/node"
GPU_RESOURCE = "nvidia.com/gpu"


@dataclass(frozen=True)
class GpuNodeSpec:
    """What a fake node offers. gpus=0 makes a CPU-only node without the GPU taint."""

    gpus: int = 8
    product: str = "NVIDIA-L4"
    cpu: str = "64"
    memory: str = "512Gi"
    pods: str = "110"
    taint: bool = True
    labels: dict[str, str] = field(default_factory=dict)


def _capacity(spec: GpuNodeSpec) -> dict[str, str]:
    capacity = {"cpu": spec.cpu, "memory": spec.memory, "pods": spec.pods, "ephemeral-storage": "1Ti"}
    if spec.gpus:
        capacity[GPU_RESOURCE] = str(spec.gpus)
    return capacity


def _labels(name: str, spec: GpuNodeSpec) -> dict[str, str]:
    labels = {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64", "type": "kwok"}
    if spec.gpus:
        labels.update(
            {
                "nvidia.com/gpu.present": "true",
                "nvidia.com/gpu.product": spec.product,
                "nvidia.com/gpu.count": str(spec.gpus),
            }
        )
    return {**labels, **spec.labels}


def gpu_node(name: str, spec: GpuNodeSpec) -> dict[str, Any]:
    """A Node manifest that kwok manages (selected by its annotation)."""
    taints = [{"key": GPU_RESOURCE, "value": "present", "effect": "NoSchedule"}] if spec.gpus and spec.taint else []
    capacity = _capacity(spec)
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "annotations": {KWOK_ANNOTATION: "fake"}, "labels": _labels(name, spec)},
        "spec": {"taints": taints},
        "status": {"capacity": capacity, "allocatable": capacity},
    }
