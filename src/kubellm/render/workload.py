"""Engine Deployments (standard, disaggregated roles, gateway canary)."""

from __future__ import annotations

from kubellm.render.context import Obj, RenderContext
from kubellm.render.engine_pod import engine_pod_template
from kubellm.render.units import Unit


def int_or_percent(value: str) -> int | str:
    """Kubernetes IntOrString: a bare number must be sent as an integer."""
    return value if value.endswith("%") else int(value)


def rolling_update(ctx: RenderContext) -> Obj:
    rollout = ctx.service.spec.rollout
    return {"maxSurge": int_or_percent(rollout.max_surge), "maxUnavailable": int_or_percent(rollout.max_unavailable)}


def workload_spec(ctx: RenderContext, unit: Unit) -> Obj:
    """The fields Deployments and Rollouts share. Replicas are left to the autoscaler when
    one is rendered, so applying the spec again does not fight it."""
    spec: Obj = {
        "revisionHistoryLimit": 3,
        "selector": {"matchLabels": ctx.selector(unit.component)},
        "template": engine_pod_template(ctx, unit),
    }
    if not unit.scaling.enabled:
        spec["replicas"] = unit.scaling.min_replicas
    return spec


def unit_annotations(unit: Unit) -> dict[str, str]:
    if unit.canary_weight is None:
        return {}
    return {"kubellm.dev/canary-weight": str(unit.canary_weight)}


def deployment(ctx: RenderContext, unit: Unit) -> Obj:
    spec = workload_spec(ctx, unit)
    spec["strategy"] = {"type": "RollingUpdate", "rollingUpdate": rolling_update(ctx)}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": ctx.metadata(unit.name, unit.component, annotations=unit_annotations(unit)),
        "spec": spec,
    }
