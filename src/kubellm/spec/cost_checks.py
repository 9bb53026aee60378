"""Cross-field rules of `spec.cost`, each a small pure function returning issues (as in
``kubellm.spec.checks``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from kubellm.spec.errors import SpecIssue
from kubellm.spec.scaling import Scaling
from kubellm.spec.serving import Role

if TYPE_CHECKING:
    from kubellm.spec.service import LLMServiceSpec

SPOT = "spec.cost.spot"
SHARING = "spec.cost.gpuSharing"


def _spot_labels(spec: LLMServiceSpec) -> Iterator[SpecIssue]:
    spot = spec.cost.spot
    if spot is None:
        return
    if spot.provider == "custom" and (spot.node_label is None or not spot.spot_values):
        yield SpecIssue(f"{SPOT}.nodeLabel", "provider custom names no spot node label",
                        f"set {SPOT}.nodeLabel and {SPOT}.spotValues (e.g. node.example.com/lifecycle and [spot])")
    if spot.on_demand_weight >= spot.spot_weight:
        yield SpecIssue(f"{SPOT}.onDemandWeight",
                        f"onDemandWeight {spot.on_demand_weight} is not below spotWeight {spot.spot_weight}: "
                        "spot would not be preferred",
                        f"lower {SPOT}.onDemandWeight below {SPOT}.spotWeight")


def _roles(spec: LLMServiceSpec) -> list[tuple[str, Role]]:
    """The prefill and decode settings a disaggregated spec gives (none in other modes)."""
    if spec.serving.mode != "disaggregated":
        return []
    roles = ((role, getattr(spec.serving, role)) for role in ("prefill", "decode"))
    return [(role, settings) for role, settings in roles if settings is not None]


def _scalings(spec: LLMServiceSpec) -> list[tuple[str, Scaling]]:
    if spec.serving.mode != "disaggregated":
        return [("spec.scaling", spec.scaling)]
    return [(f"spec.serving.{role}.scaling", settings.scaling) for role, settings in _roles(spec)]


def _spot_floor(spec: LLMServiceSpec) -> Iterator[SpecIssue]:
    spot = spec.cost.spot
    if spot is None or spot.min_available is None:
        return
    if spec.serving.mode == "multinode":
        yield SpecIssue(f"{SPOT}.minAvailable", "multinode groups get no PodDisruptionBudget from kubellm",
                        f"remove {SPOT}.minAvailable, or use serving.mode standard")
    if not spec.security.pod_disruption_budget:
        yield SpecIssue(f"{SPOT}.minAvailable", "the floor is a PodDisruptionBudget, and security.podDisruptionBudget is off",
                        f"set spec.security.podDisruptionBudget to true, or remove {SPOT}.minAvailable")
    for path, scaling in _scalings(spec):
        if spot.min_available >= scaling.min_replicas:
            lower = f"set {SPOT}.minAvailable to at most {scaling.min_replicas - 1}, or " if scaling.min_replicas > 1 else ""
            yield SpecIssue(f"{SPOT}.minAvailable",
                            f"minAvailable {spot.min_available} is not below {path}.minReplicas {scaling.min_replicas}: "
                            "at the minimum, every drain (spot reclaim, scale-down, upgrade) would be refused",
                            f"{lower}raise {path}.minReplicas to {spot.min_available + 1}")


def _priority(spec: LLMServiceSpec) -> Iterator[SpecIssue]:
    if spec.cost.priority_class is not None and spec.resources.priority_class_name is not None:
        yield SpecIssue("spec.cost.priorityClass",
                        "both spec.cost.priorityClass (render one) and spec.resources.priorityClassName (use an "
                        "existing one) are set",
                        "keep one: remove spec.resources.priorityClassName to run at the rendered <name>-serving")


def _sharing_shape(spec: LLMServiceSpec) -> Iterator[SpecIssue]:
    sharing = spec.cost.gpu_sharing
    if sharing is None:
        return
    if sharing.mode == "mig" and sharing.mig_profile is None:
        yield SpecIssue(f"{SHARING}.migProfile", "mode mig needs an instance profile",
                        f"set {SHARING}.migProfile, e.g. 1g.10gb, 2g.20gb or 3g.40gb on an H100 80GB")
    if sharing.mode == "timeSlicing" and sharing.mig_profile is not None:
        yield SpecIssue(f"{SHARING}.migProfile", "migProfile is a mig setting; mode is timeSlicing",
                        f"remove {SHARING}.migProfile, or set {SHARING}.mode to mig")


def _sharing_fit(spec: LLMServiceSpec) -> Iterator[SpecIssue]:
    sharing, acc = spec.cost.gpu_sharing, spec.resources.accelerator
    if sharing is None:
        return
    counts = {acc.count, *(r.accelerator_count for _, r in _roles(spec) if r.accelerator_count is not None)}
    if counts != {1} or spec.serving.mode == "multinode":
        yield SpecIssue(f"{SHARING}.mode", f"a shared GPU serves pods of one GPU slice each; this spec asks for "
                        f"{acc.count} accelerator(s) per pod in {spec.serving.mode} mode",
                        "set spec.resources.accelerator.count to 1 (a small model), or remove spec.cost.gpuSharing")
    if acc.resource_name != "nvidia.com/gpu":
        yield SpecIssue(f"{SHARING}.mode", f"GPU sharing is the NVIDIA device plugin's; the accelerator resource is "
                        f"{acc.resource_name}", "remove spec.cost.gpuSharing, or use resourceName nvidia.com/gpu")
    memory = spec.engine.gpu_memory_utilization
    if sharing.mode == "timeSlicing" and spec.engine.kind == "vllm":
        limit = 1 / sharing.replicas
        if memory is None or memory > limit:
            yield SpecIssue("spec.engine.gpuMemoryUtilization",
                            f"time-slicing does not divide GPU memory: {sharing.replicas} vLLM pods on one GPU need "
                            f"gpuMemoryUtilization at most {limit:.3g} each (given: {memory or 'vLLM default 0.9'})",
                            f"set spec.engine.gpuMemoryUtilization to {int(limit * 100) / 100:g} or less")


def _budget(spec: LLMServiceSpec) -> Iterator[SpecIssue]:
    if spec.cost.budget is not None and spec.resources.accelerator.count == 0:
        yield SpecIssue("spec.cost.budget", "the budget counts accelerator-hours and this service requests none",
                        "remove spec.cost.budget, or give the pods accelerators")


COST_CHECKS: tuple[Callable[[LLMServiceSpec], Iterator[SpecIssue]], ...] = (
    _spot_labels, _spot_floor, _priority, _sharing_shape, _sharing_fit, _budget,
)


def check_cost(spec: LLMServiceSpec) -> list[SpecIssue]:
    """Every cross-field problem of *spec.cost* (empty when it is consistent)."""
    return [issue for check in COST_CHECKS for issue in check(spec)]
