"""Cost settings: `spec.cost` (spot pools, serving priority, GPU sharing, a budget alert)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from kubellm.spec.base import SpecModel
from kubellm.spec.resources import Toleration
from kubellm.spec.types import LabelKey, LabelValue

SpotProvider = Literal["gke", "eks", "karpenter", "aks", "custom"]
# A MIG profile as the device plugin names it: <compute slices>g.<memory>gb, optionally +me.
MigProfile = Annotated[str, StringConstraints(pattern=r"^[1-7]g\.[0-9]+gb(\+me)?$")]


@dataclass(frozen=True)
class SpotPreset:
    """How a provider marks spot nodes: the label (and its spot values) and the taint, if any."""

    label: str
    spot_values: tuple[str, ...]
    taint: Toleration | None


def _taint(key: str, value: str) -> Toleration:
    return Toleration(key=key, operator="Equal", value=value, effect="NoSchedule")


# GKE labels Spot VMs cloud.google.com/gke-spot=true (and taints them so when node
# auto-provisioning creates the pool); EKS managed node groups label
# eks.amazonaws.com/capacityType=SPOT; Karpenter karpenter.sh/capacity-type=spot; AKS labels
# and taints spot pools kubernetes.azure.com/scalesetpriority=spot.
SPOT_PRESETS: dict[str, SpotPreset] = {
    "gke": SpotPreset("cloud.google.com/gke-spot", ("true",), _taint("cloud.google.com/gke-spot", "true")),
    "eks": SpotPreset("eks.amazonaws.com/capacityType", ("SPOT",), None),
    "karpenter": SpotPreset("karpenter.sh/capacity-type", ("spot",), None),
    "aks": SpotPreset("kubernetes.azure.com/scalesetpriority", ("spot",),
                      _taint("kubernetes.azure.com/scalesetpriority", "spot")),
}


class Spot(SpecModel):
    """Prefer spot (preemptible) accelerator nodes and fall back to on-demand ones: preferred
    node affinity, never required, so pods land on on-demand nodes when no spot node is free."""

    provider: SpotProvider
    """Whose node labels and taints to use: gke (cloud.google.com/gke-spot=true, tainted
    NoSchedule), eks (eks.amazonaws.com/capacityType=SPOT), karpenter
    (karpenter.sh/capacity-type=spot), aks (kubernetes.azure.com/scalesetpriority=spot, tainted
    NoSchedule), or custom (give nodeLabel and spotValues)."""
    node_label: LabelKey | None = None
    """Node label that marks spot nodes (default: the provider's; required for custom)."""
    spot_values: tuple[LabelValue, ...] | None = None
    """Values of nodeLabel on spot nodes (default: the provider's; required for custom)."""
    tolerations: tuple[Toleration, ...] | None = None
    """Tolerations for the spot taint (default: the provider's taint, if it has one). Added to
    spec.resources.tolerations (or the accelerator's default toleration)."""
    spot_weight: Annotated[int, Field(ge=1, le=100)] = 100
    """Weight of the preference for spot nodes (the scheduler's 1 to 100)."""
    on_demand_weight: Annotated[int, Field(ge=0, le=100)] = 1
    """Weight of the fallback preference for on-demand nodes (0: no term); below spotWeight."""
    min_available: Annotated[int, Field(ge=1, le=1000)] | None = None
    """PodDisruptionBudget floor: engine pods kept through drains (spot reclaim notices drained by
    a node termination handler, cluster-autoscaler scale-down, upgrades). Default: the budget
    stays maxUnavailable 1. Below scaling.minReplicas, or every drain at the minimum would block."""

    @property
    def label(self) -> str:
        return self.node_label or SPOT_PRESETS[self.provider].label

    @property
    def values(self) -> tuple[str, ...]:
        return self.spot_values or SPOT_PRESETS[self.provider].spot_values

    @property
    def effective_tolerations(self) -> tuple[Toleration, ...]:
        if self.tolerations is not None:
            return self.tolerations
        preset = SPOT_PRESETS.get(self.provider)
        return (preset.taint,) if preset and preset.taint else ()


class ServingPriority(SpecModel):
    """A PriorityClass rendered for this service, referenced by its engine pods, so serving
    pre-empts batch work (pods of lower priority) when accelerators run short."""

    value: Annotated[int, Field(ge=1, le=1_000_000_000)] = 1_000_000
    """Priority value (user classes go up to one billion; above your batch classes)."""
    preemption_policy: Literal["PreemptLowerPriority", "Never"] = "PreemptLowerPriority"
    """PreemptLowerPriority evicts lower-priority pods to make room; Never only queues first."""


# Compute slices of a 7-slice MIG GPU (A100, H100, H200) -> instances of that profile per GPU.
MIG_INSTANCES = {1: 7, 2: 3, 3: 2, 4: 1, 7: 1}
MIG_SLICES = 7


class GpuSharing(SpecModel):
    """Several engine pods on one GPU, for models far smaller than the GPU: the NVIDIA device
    plugin's time-slicing (shared GPU, no isolation) or MIG (hardware partitions). Renders the
    device plugin's config (and for MIG the MIG manager's layout) as ConfigMaps, and the pods
    request the shared resource."""

    mode: Literal["timeSlicing", "mig"]
    """timeSlicing: each GPU advertised `replicas` times as nvidia.com/gpu.shared; mig: the
    GPU partitioned into migProfile instances, requested as nvidia.com/mig-<profile>."""
    replicas: Annotated[int, Field(ge=2, le=64)] = 4
    """timeSlicing: pods sharing one GPU (each gets 1/replicas of its time, and memory is NOT
    divided: keep gpuMemoryUtilization x replicas <= 1)."""
    mig_profile: MigProfile | None = None
    """mig: the instance profile, e.g. 1g.10gb (H100 80GB), 2g.20gb, 3g.40gb; required for mig."""
    config_name: LabelValue | None = None
    """Key of this configuration in the ConfigMaps; nodes opt in with the label
    nvidia.com/device-plugin.config=<key> (and nvidia.com/mig.config=<key> for mig).
    Default: the service's name."""
    namespace: Annotated[str, StringConstraints(pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", max_length=63)] = "gpu-operator"
    """Namespace of the NVIDIA GPU operator (or device plugin), where the ConfigMaps go."""

    @property
    def resource_name(self) -> str:
        """The extended resource the pods request."""
        if self.mode == "timeSlicing":
            return "nvidia.com/gpu.shared"
        return f"nvidia.com/mig-{self.mig_profile}"

    @property
    def gpu_fraction(self) -> float:
        """The share of one physical GPU a pod holds (compute slices for MIG)."""
        if self.mode == "timeSlicing" or self.mig_profile is None:
            return 1 / self.replicas
        return mig_slices(self.mig_profile) / MIG_SLICES


def mig_slices(profile: str) -> int:
    """Compute slices of a MIG profile: 3 for 3g.40gb."""
    match = re.match(r"^([1-7])g\.", profile)
    if match is None:
        raise ValueError(f"not a MIG profile: {profile!r}")
    return int(match.group(1))


class Budget(SpecModel):
    """An alert on the accelerator-hours this service's engine pods requested over a window
    (from kube-state-metrics' kube_pod_container_resource_requests)."""

    accelerator_hours: Annotated[float, Field(gt=0, le=10_000_000)]
    """Accelerator-hours allowed per window. A shared GPU counts its share (1/replicas of a GPU
    for timeSlicing, slices/7 for mig)."""
    window: Literal["1d", "7d", "30d"] = "30d"
    """Rolling window the hours are summed over."""
    warn_at: Annotated[float, Field(gt=0, lt=1)] = 0.8
    """Share of the budget at which a warning fires; a critical alert fires when it is spent."""


class Cost(SpecModel):
    """Settings that cut accelerator cost: spot pools, a serving priority, GPU sharing, a budget."""

    spot: Spot | None = None
    """Prefer spot nodes, fall back to on-demand, tolerate the spot taint, keep a floor."""
    priority_class: ServingPriority | None = None
    """Render a PriorityClass <name>-serving and run the engine pods at it."""
    gpu_sharing: GpuSharing | None = None
    """Share GPUs between engine pods (time-slicing or MIG)."""
    budget: Budget | None = None
    """Alert when the service's accelerator-hours approach or pass a budget."""
