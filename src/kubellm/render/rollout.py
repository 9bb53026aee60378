"""Argo Rollouts canary: the engine workload as a Rollout with weight steps."""

from __future__ import annotations

from kubellm.render.context import Obj, RenderContext
from kubellm.render.units import Unit
from kubellm.render.workload import rolling_update, workload_spec


def canary_steps(ctx: RenderContext) -> list[Obj]:
    canary = ctx.service.spec.rollout.canary
    weight = canary.weight if canary else 10
    weights = list(canary.steps) if canary and canary.steps else [weight, 50, 100]
    pause = f"{canary.pause_seconds if canary else 600}s"
    steps: list[Obj] = []
    for index, value in enumerate(weights):
        steps.append({"setWeight": value})
        if index < len(weights) - 1:
            steps.append({"pause": {"duration": pause}})
    return steps


def argo_rollout(ctx: RenderContext, unit: Unit) -> Obj:
    spec = workload_spec(ctx, unit)
    spec["strategy"] = {"canary": {**rolling_update(ctx), "steps": canary_steps(ctx)}}
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Rollout",
        "metadata": ctx.metadata(unit.name, unit.component),
        "spec": spec,
    }
