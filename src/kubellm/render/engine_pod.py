"""The engine pod template shared by Deployments, Rollouts and LeaderWorkerSets."""

from __future__ import annotations

from kubellm.render.commands import Command, engine_command
from kubellm.render.context import Obj, RenderContext
from kubellm.render.cost import priority_class_name, requested_resource, spot_affinity, spot_tolerations, toleration
from kubellm.render.images import engine_image
from kubellm.render.pod import TMP_MOUNT, TMP_VOLUME, container, equal_resources, http_probes, pod_spec
from kubellm.render.sources import Source, merge_sources, resolve
from kubellm.render.storage import wait_for_weights
from kubellm.render.units import Unit
from kubellm.spec.engine import STARTUP_SECONDS

PORT_NAME = "http"


def unit_sources(ctx: RenderContext, unit: Unit) -> tuple[Source, list[Source]]:
    """The unit's model source and its LoRA adapters' sources (vLLM only)."""
    loras = [resolve(ctx, a.uri) for a in ctx.service.spec.engine.lora_adapters]
    return resolve(ctx, unit.model_uri), loras


def pod_resources(ctx: RenderContext, gpus: int) -> Obj:
    res = ctx.service.spec.resources
    amounts = {"cpu": res.cpu, "memory": res.memory, "ephemeral-storage": res.ephemeral_storage}
    if gpus:
        amounts[requested_resource(ctx)] = str(gpus)
    return equal_resources(amounts)


def _tolerations(ctx: RenderContext, gpus: int) -> list[Obj]:
    res = ctx.service.spec.resources
    if res.tolerations is not None:
        base = [toleration(t) for t in res.tolerations]
    else:
        # GPU node pools are usually tainted with the device resource name.
        base = [{"effect": "NoSchedule", "key": res.accelerator.resource_name, "operator": "Exists"}] if gpus else []
    return base + spot_tolerations(ctx)


def placement(ctx: RenderContext, gpus: int) -> Obj:
    """Node selector, spot affinity, tolerations and priority class of engine pods."""
    res, spot = ctx.service.spec.resources, ctx.service.spec.cost.spot
    selector = dict(res.node_selector)
    if gpus and res.accelerator.type:
        selector[res.accelerator.node_label] = res.accelerator.type
    out: Obj = {}
    if selector:
        out["nodeSelector"] = selector
    if spot is not None:
        out["affinity"] = spot_affinity(spot)
    tolerations = _tolerations(ctx, gpus)
    if tolerations:
        out["tolerations"] = tolerations
    priority = priority_class_name(ctx)
    if priority:
        out["priorityClassName"] = priority
    return out


def engine_container(ctx: RenderContext, unit: Unit, command: Command, mounts: list[Obj], probes: bool = True) -> Obj:
    spec = ctx.service.spec
    mounts = [TMP_MOUNT, {"name": "dshm", "mountPath": "/dev/shm"}, *mounts]
    extra: Obj = {
        "ports": [{"containerPort": spec.engine.port, "name": PORT_NAME, "protocol": "TCP"}],
        "volumeMounts": mounts,
    }
    if probes:
        extra.update(http_probes(PORT_NAME, STARTUP_SECONDS[spec.engine.kind]))
    body = container("engine", engine_image(ctx.service, ctx.images), command, pod_resources(ctx, unit.gpus), **extra)
    if unit.kv_role is not None and spec.engine.kind == "vllm":
        # NIXL's side channel must advertise an address the other role can reach.
        pod_ip = {"name": "VLLM_NIXL_SIDE_CHANNEL_HOST", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}
        body["env"] = [*body.get("env", []), pod_ip]
    return body


def engine_volumes(ctx: RenderContext, volumes: list[Obj]) -> list[Obj]:
    shm = {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": ctx.service.spec.resources.shm_size}}
    return sorted([TMP_VOLUME, shm, *volumes], key=lambda v: str(v["name"]))


def spread(ctx: RenderContext, unit: Unit) -> Obj:
    return {
        "topologySpreadConstraints": [
            {
                "labelSelector": {"matchLabels": ctx.selector(unit.component)},
                "maxSkew": 1,
                "topologyKey": "kubernetes.io/hostname",
                "whenUnsatisfiable": "ScheduleAnyway",
            }
        ]
    }


def engine_pod_template(ctx: RenderContext, unit: Unit) -> Obj:
    model, loras = unit_sources(ctx, unit)
    volumes, mounts = merge_sources([model, *loras])
    command = engine_command(ctx, unit, model, loras)
    engine = engine_container(ctx, unit, command, mounts)
    init = wait_for_weights(ctx, [model, *loras])
    extra: Obj = {**placement(ctx, unit.gpus), **spread(ctx, unit)}
    if init:
        extra["initContainers"] = init
    annotations = {"kubellm.dev/model-uri": unit.model_uri}
    return {
        "metadata": {"annotations": annotations, "labels": ctx.labels(unit.component)},
        "spec": pod_spec(ctx, [engine], engine_volumes(ctx, volumes), terminationGracePeriodSeconds=60, **extra),
    }
