"""Serving units: the engine workloads a spec asks for, each with its own settings.

standard -> one unit; disaggregated -> prefill + decode; gatewayCanary -> main + canary;
multinode -> one unit rendered as a LeaderWorkerSet. Later modules iterate over units so
no module needs to know about modes.
"""

from __future__ import annotations

from dataclasses import dataclass

from kubellm.render.context import RenderContext
from kubellm.spec.engine import EngineTuning
from kubellm.spec.scaling import Scaling


@dataclass(frozen=True)
class Unit:
    name: str
    component: str
    model_uri: str
    scaling: Scaling
    gpus: int
    tuning: EngineTuning
    kv_role: str | None = None
    canary_weight: int | None = None


def _merge(base: EngineTuning, override: EngineTuning) -> EngineTuning:
    """Role options override the engine's where the role sets them."""
    return base.model_copy(update={name: getattr(override, name) for name in override.model_fields_set})


def base_tuning(engine: EngineTuning) -> EngineTuning:
    return EngineTuning.model_validate({name: getattr(engine, name) for name in EngineTuning.model_fields})


def units(ctx: RenderContext) -> list[Unit]:
    spec, name = ctx.service.spec, ctx.name
    gpus = spec.resources.accelerator.count
    tuning = base_tuning(spec.engine)
    if spec.serving.mode == "disaggregated":
        return [_role_unit(ctx, role, tuning) for role in ("prefill", "decode")]
    main = Unit(name, "engine", spec.model.uri, spec.scaling, gpus, tuning)
    canary = spec.rollout.canary
    if spec.rollout.strategy == "gatewayCanary" and canary is not None and canary.uri:
        return [main, Unit(f"{name}-canary", "canary", canary.uri, Scaling(), gpus, tuning, canary_weight=canary.weight)]
    return [main]


def _role_unit(ctx: RenderContext, role: str, tuning: EngineTuning) -> Unit:
    spec = ctx.service.spec
    settings = getattr(spec.serving, role)
    assert settings is not None  # guaranteed by the spec's cross-field checks
    gpus = settings.accelerator_count
    gpus = spec.resources.accelerator.count if gpus is None else gpus
    return Unit(
        f"{ctx.name}-{role}", role, spec.model.uri, settings.scaling, gpus,
        _merge(tuning, settings.engine), kv_role=role,
    )
