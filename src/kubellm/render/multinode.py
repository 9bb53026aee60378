"""Multinode serving: a LeaderWorkerSet whose groups run vLLM on a Ray cluster."""

from __future__ import annotations

from kubellm.render.commands import ray_leader_command, ray_worker_command
from kubellm.render.context import Obj, RenderContext
from kubellm.render.engine_pod import engine_container, engine_volumes, placement, unit_sources
from kubellm.render.pod import exec_probes, pod_spec
from kubellm.render.sources import merge_sources
from kubellm.render.storage import wait_for_weights
from kubellm.render.units import Unit
from kubellm.render.workload import rolling_update


def _template(ctx: RenderContext, unit: Unit, component: str, leader: bool) -> Obj:
    model, loras = unit_sources(ctx, unit)
    volumes, mounts = merge_sources([model, *loras])
    if leader:
        engine = engine_container(ctx, unit, ray_leader_command(ctx, unit, model, loras), mounts)
    else:
        engine = engine_container(ctx, unit, ray_worker_command(ctx), mounts, probes=False)
        engine.pop("ports")
        port = ctx.service.spec.serving.group.ray_port
        engine.update(exec_probes(["sh", "-c", f"ray status --address=${{LWS_LEADER_ADDRESS}}:{port} >/dev/null"]))
    extra: Obj = dict(placement(ctx, unit.gpus))
    init = wait_for_weights(ctx, [model, *loras])
    if init:
        extra["initContainers"] = init
    return {
        "metadata": {"annotations": {"kubellm.dev/model-uri": unit.model_uri}, "labels": ctx.labels(component)},
        "spec": pod_spec(ctx, [engine], engine_volumes(ctx, volumes), terminationGracePeriodSeconds=60, **extra),
    }


def leader_worker_set(ctx: RenderContext, unit: Unit) -> Obj:
    spec: Obj = {
        "leaderWorkerTemplate": {
            "leaderTemplate": _template(ctx, unit, unit.component, leader=True),
            "restartPolicy": "RecreateGroupOnPodRestart",
            "size": ctx.service.spec.serving.group.nodes,
            "workerTemplate": _template(ctx, unit, "worker", leader=False),
        },
        "rolloutStrategy": {"type": "RollingUpdate", "rollingUpdateConfiguration": rolling_update(ctx)},
        "startupPolicy": "LeaderCreated",
    }
    if not unit.scaling.enabled:
        spec["replicas"] = unit.scaling.min_replicas
    return {
        "apiVersion": "leaderworkerset.x-k8s.io/v1",
        "kind": "LeaderWorkerSet",
        "metadata": ctx.metadata(unit.name, unit.component),
        "spec": spec,
    }
