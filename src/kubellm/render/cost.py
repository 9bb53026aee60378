"""Cost settings (`spec.cost`): spot placement, the serving PriorityClass, the NVIDIA device
plugin's sharing config, and the accelerator-hours budget alerts. Pure."""

from __future__ import annotations

import re

import yaml

from kubellm.render.context import Obj, RenderContext
from kubellm.render.signals import format_number
from kubellm.render.units import Unit
from kubellm.spec.cost import MIG_INSTANCES, Budget, GpuSharing, Spot, mig_slices
from kubellm.spec.resources import Toleration

# How often the budget's subquery samples the requested accelerators.
BUDGET_STEP_MINUTES = 5


def requested_resource(ctx: RenderContext) -> str:
    """The extended resource engine pods request: the shared one when GPUs are shared."""
    sharing = ctx.service.spec.cost.gpu_sharing
    return sharing.resource_name if sharing else ctx.service.spec.resources.accelerator.resource_name


def serving_class(ctx: RenderContext) -> str:
    """Name of the PriorityClass rendered for the service."""
    return f"{ctx.name}-serving"


def priority_class_name(ctx: RenderContext) -> str | None:
    """The PriorityClass engine pods run at: the rendered one, else the spec's existing one."""
    if ctx.service.spec.cost.priority_class is not None:
        return serving_class(ctx)
    return ctx.service.spec.resources.priority_class_name


def priority_class(ctx: RenderContext) -> list[Obj]:
    priority = ctx.service.spec.cost.priority_class
    if priority is None:
        return []
    metadata = ctx.metadata(serving_class(ctx), "scheduling")
    metadata.pop("namespace", None)  # cluster-scoped
    return [{
        "apiVersion": "scheduling.k8s.io/v1",
        "kind": "PriorityClass",
        "metadata": metadata,
        "value": priority.value,
        "preemptionPolicy": priority.preemption_policy,
        "globalDefault": False,
        "description": f"kubellm: engine pods of {ctx.name}; above batch work, so serving pre-empts it",
    }]


def spot_affinity(spot: Spot) -> Obj:
    """Preferred (never required) node affinity: spot first, on-demand as the fallback."""
    terms: list[Obj] = [{
        "preference": {"matchExpressions": [{"key": spot.label, "operator": "In", "values": list(spot.values)}]},
        "weight": spot.spot_weight,
    }]
    if spot.on_demand_weight:
        terms.append({
            "preference": {"matchExpressions": [{"key": spot.label, "operator": "NotIn", "values": list(spot.values)}]},
            "weight": spot.on_demand_weight,
        })
    return {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": terms}}


def spot_tolerations(ctx: RenderContext) -> list[Obj]:
    spot = ctx.service.spec.cost.spot
    return [toleration(t) for t in spot.effective_tolerations] if spot else []


def toleration(value: Toleration) -> Obj:
    return value.model_dump(exclude_none=True)


def disruption_floor(ctx: RenderContext) -> int | None:
    """minAvailable of the engines' PodDisruptionBudget when spot asks for a floor."""
    spot = ctx.service.spec.cost.spot
    return spot.min_available if spot else None


def device_plugin_config(sharing: GpuSharing) -> Obj:
    """One config of the NVIDIA device plugin (its `version: v1` file format)."""
    if sharing.mode == "mig":
        return {"version": "v1", "flags": {"migStrategy": "mixed"}}
    resource = {"name": "nvidia.com/gpu", "replicas": sharing.replicas}
    time_slicing = {"failRequestsGreaterThanOne": True, "renameByDefault": True, "resources": [resource]}
    return {"version": "v1", "flags": {"migStrategy": "none"}, "sharing": {"timeSlicing": time_slicing}}


def mig_layout(sharing: GpuSharing, name: str) -> Obj:
    """The MIG manager's (mig-parted's) layout: every GPU cut into instances of one profile."""
    assert sharing.mig_profile is not None  # guaranteed by the spec's cross-field checks
    count = MIG_INSTANCES[mig_slices(sharing.mig_profile)]
    devices = {"devices": "all", "mig-enabled": True, "mig-devices": {sharing.mig_profile: count}}
    return {"version": "v1", "mig-configs": {name: [devices]}}


def _config_map(ctx: RenderContext, name: str, namespace: str, data: dict[str, str]) -> Obj:
    metadata = ctx.metadata(name, "gpu-sharing")
    metadata["namespace"] = namespace
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata, "data": data}


def sharing_objects(ctx: RenderContext) -> list[Obj]:
    """ConfigMaps for the GPU operator: the device plugin's config (key: the config name that
    nodes select with nvidia.com/device-plugin.config), and for MIG the MIG manager's layout
    (nodes select it with nvidia.com/mig.config)."""
    sharing = ctx.service.spec.cost.gpu_sharing
    if sharing is None:
        return []
    key = sharing.config_name or ctx.name
    plugin = yaml.safe_dump(device_plugin_config(sharing), sort_keys=True)
    objects = [_config_map(ctx, f"{ctx.name}-device-plugin-config", sharing.namespace, {key: plugin})]
    if sharing.mode == "mig":
        layout = yaml.safe_dump(mig_layout(sharing, key), sort_keys=True)
        objects.append(_config_map(ctx, f"{ctx.name}-mig-config", sharing.namespace, {"config.yaml": layout}))
    return objects


def _pod_pattern(ctx: RenderContext, units: list[Unit]) -> str:
    """Pod names of the units' workloads: Deployment/Rollout pods are <name>-<hash>-<5>,
    LeaderWorkerSet pods <name>-<group>[-<worker>]; another service <name>-x matches neither."""
    names = "|".join(u.name for u in units)
    if ctx.service.spec.serving.mode == "multinode":
        return f"({names})-[0-9]+(-[0-9]+)?"
    return f"({names})-[a-z0-9]{{1,10}}-[a-z0-9]{{5}}"


def kube_state_resource(name: str) -> str:
    """kube-state-metrics' spelling of a resource name in its `resource` label (Prometheus'
    SanitizeLabelName: every character outside [a-zA-Z0-9_] becomes `_`)."""
    return re.sub(r"[^a-zA-Z0-9_]", "_", name)


def accelerator_hours_expr(ctx: RenderContext, units: list[Unit], budget: Budget) -> str:
    """Accelerator-hours the units' pods requested over the budget's window: the requested
    count sampled every 5 minutes, summed, as hours, times the share of a GPU one unit is."""
    ns = f'namespace="{ctx.namespace}",' if ctx.namespace else ""
    sel = f'{ns}resource="{kube_state_resource(requested_resource(ctx))}",pod=~"{_pod_pattern(ctx, units)}"'
    sharing = ctx.service.spec.cost.gpu_sharing
    share = f" * {format_number(round(sharing.gpu_fraction, 6))}" if sharing else ""
    step, minutes = BUDGET_STEP_MINUTES, 60 // BUDGET_STEP_MINUTES
    return (f"sum_over_time(sum(kube_pod_container_resource_requests{{{sel}}})[{budget.window}:{step}m])"
            f" / {minutes}{share}")


def budget_rules(ctx: RenderContext, units: list[Unit]) -> list[Obj]:
    budget = ctx.service.spec.cost.budget
    if budget is None:
        return []
    used, limit, name = accelerator_hours_expr(ctx, units, budget), budget.accelerator_hours, ctx.name
    warn = limit * budget.warn_at

    def rule(alert: str, threshold: float, severity: str, summary: str) -> Obj:
        return {
            "alert": alert,
            "annotations": {"description": summary, "runbook": "kubellm docs/render.md#cost", "summary": summary},
            "expr": f"{used} > {format_number(threshold)}",
            "for": "15m",
            "labels": {"severity": severity},
        }

    window = budget.window
    return [
        rule("LLMServiceAcceleratorBudgetNearlySpent", warn, "warning",
             f"{name}: over {format_number(budget.warn_at * 100)} % of the {format_number(limit)} "
             f"accelerator-hour budget used in the last {window}"),
        rule("LLMServiceAcceleratorBudgetSpent", limit, "critical",
             f"{name}: the {format_number(limit)} accelerator-hour budget of the last {window} is spent"),
    ]
