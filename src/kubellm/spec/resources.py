"""Compute resources and placement: `spec.resources`."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from kubellm.spec.base import SpecModel
from kubellm.spec.types import KubeName, LabelMap, Quantity


class Accelerator(SpecModel):
    """GPUs (or other accelerators) per engine pod."""

    type: str | None = None
    """Accelerator model, e.g. nvidia-l4 or NVIDIA-A100-SXM4-80GB; pins pods to nodes whose
    `nodeLabel` has this value."""
    count: Annotated[int, Field(ge=0, le=16)] = 1
    """Accelerators per pod (per node in multinode mode). Default: 1 for vllm, 0 otherwise."""
    resource_name: str = "nvidia.com/gpu"
    """Extended resource name requested from the device plugin."""
    node_label: str = "nvidia.com/gpu.product"
    """Node label that carries the accelerator type (GKE: cloud.google.com/gke-accelerator)."""


class Toleration(SpecModel):
    """A Kubernetes toleration."""

    key: str | None = None
    """Taint key (none with operator Exists tolerates everything)."""
    operator: Literal["Exists", "Equal"] = "Exists"
    """Exists or Equal."""
    value: str | None = None
    """Taint value (operator Equal)."""
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = None
    """Taint effect (none: all effects)."""


class Resources(SpecModel):
    """Per-pod CPU, memory, accelerators and placement. Requests equal limits (Guaranteed QoS)."""

    accelerator: Accelerator = Accelerator()
    """Accelerators per pod; set count 0 for CPU-only engines."""
    cpu: Quantity = "4"
    """CPU per pod. Default: 8 for vllm, 4 for llamacpp, 500m for sim."""
    memory: Quantity = "32Gi"
    """Memory per pod. Default: 32Gi for vllm, 8Gi for llamacpp, 512Mi for sim."""
    ephemeral_storage: Quantity = "10Gi"
    """Scratch disk per pod (logs, compile caches)."""
    shm_size: Quantity = "2Gi"
    """Size of /dev/shm (a memory-backed volume); tensor parallelism needs it for NCCL."""
    node_selector: LabelMap = {}
    """Extra node labels pods must match."""
    tolerations: tuple[Toleration, ...] | None = None
    """Tolerations; default: tolerate the accelerator resource's taint when accelerators are used."""
    priority_class_name: KubeName | None = None
    """PriorityClass of the engine pods."""
