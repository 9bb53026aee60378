"""render(service, target_version) -> the Kubernetes objects, in apply order. Pure."""

from __future__ import annotations

import copy

from kubellm.render.alerts import prometheus_rule
from kubellm.render.context import Obj, RenderContext, parse_target
from kubellm.render.cost import priority_class, sharing_objects
from kubellm.render.dashboard import dashboard
from kubellm.render.engine_pod import unit_sources
from kubellm.render.images import DEFAULT_IMAGES, Images
from kubellm.render.exposure import exposure_objects
from kubellm.render.monitors import monitor
from kubellm.render.multinode import leader_worker_set
from kubellm.render.network import ingress, unit_service
from kubellm.render.order import apply_order
from kubellm.render.rollout import argo_rollout
from kubellm.render.scaling import scaling_objects
from kubellm.render.security import disruption_budget, gpu_quota, network_policies, service_account, tenant_rbac
from kubellm.render.sources import Source
from kubellm.render.storage import storage_objects
from kubellm.render.units import Unit, units
from kubellm.render.workload import deployment
from kubellm.spec import LLMService, SpecError, check_target

DEFAULT_TARGET = "1.31"


def workload(ctx: RenderContext, unit: Unit) -> Obj:
    spec = ctx.service.spec
    if spec.serving.mode == "multinode":
        return leader_worker_set(ctx, unit)
    if spec.rollout.strategy == "argoCanary":
        return argo_rollout(ctx, unit)
    return deployment(ctx, unit)


def _sources(ctx: RenderContext, serving: list[Unit]) -> list[Source]:
    found: list[Source] = []
    for unit in serving:
        model, loras = unit_sources(ctx, unit)
        found += [model, *loras]
    return found


def render(service: LLMService, target_version: str = DEFAULT_TARGET, images: Images = DEFAULT_IMAGES) -> list[Obj]:
    """Every object the service needs, in apply order. Same input, same output."""
    ctx = RenderContext(service, parse_target(target_version), images)
    issues = check_target(service.spec, target_version)
    if issues:
        raise SpecError(issues)
    serving = units(ctx)
    sources = _sources(ctx, serving)
    objects: list[Obj] = [service_account(ctx)]
    objects += storage_objects(ctx, sources)
    objects += network_policies(ctx, has_loader=any(s.kind == "cache" for s in sources))
    objects += tenant_rbac(ctx) + gpu_quota(ctx) + priority_class(ctx) + sharing_objects(ctx)
    for unit in serving:
        objects += [workload(ctx, unit), unit_service(ctx, unit), *disruption_budget(ctx, unit)]
    objects += scaling_objects(ctx, serving) + ingress(ctx) + exposure_objects(ctx)
    objects += monitor(ctx) + prometheus_rule(ctx, serving) + dashboard(ctx)
    # Modules share constant fragments (probes, volumes); callers get independent copies.
    return copy.deepcopy(apply_order(objects))
