"""Autoscaling: a KEDA ScaledObject, or an HPA plus the Prometheus Adapter rules it needs."""

from __future__ import annotations

import yaml

from kubellm.render.context import Obj, RenderContext
from kubellm.render.signals import HPA_METRIC_NAMES, SUMMED, adapter_rule, format_number, keda_query, quantity
from kubellm.render.units import Unit

# Served when no engine runs, so scale-from-zero has something to activate on.
GATEWAY_PENDING_METRIC = "kubellm_gateway_pending_requests"


def target_ref(ctx: RenderContext, unit: Unit) -> Obj:
    spec = ctx.service.spec
    if spec.serving.mode == "multinode":
        return {"apiVersion": "leaderworkerset.x-k8s.io/v1", "kind": "LeaderWorkerSet", "name": unit.name}
    if spec.rollout.strategy == "argoCanary":
        return {"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "name": unit.name}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "name": unit.name}


def behavior(unit: Unit) -> Obj:
    windows = unit.scaling.stabilization
    return {
        "scaleDown": {"stabilizationWindowSeconds": windows.scale_down_seconds},
        "scaleUp": {"stabilizationWindowSeconds": windows.scale_up_seconds},
    }


def _triggers(ctx: RenderContext, unit: Unit) -> list[Obj]:
    scaling = unit.scaling
    triggers: list[Obj] = [
        {
            "metadata": {
                "query": keda_query(ctx, unit),
                "serverAddress": scaling.prometheus_url,
                "threshold": format_number(scaling.effective_target),
            },
            "metricType": "AverageValue" if scaling.signal in SUMMED else "Value",
            "name": scaling.signal.lower(),
            "type": "prometheus",
        }
    ]
    if scaling.scale_to_zero:
        model = ctx.service.spec.model.served_name
        query = f'sum({GATEWAY_PENDING_METRIC}{{model="{model}"}})'
        metadata = {"activationThreshold": "0", "query": query, "serverAddress": scaling.prometheus_url, "threshold": "1"}
        triggers.append({"metadata": metadata, "metricType": "AverageValue", "name": "gateway-pending", "type": "prometheus"})
    return triggers


def scaled_object(ctx: RenderContext, unit: Unit) -> Obj:
    scaling = unit.scaling
    spec: Obj = {
        "advanced": {"horizontalPodAutoscalerConfig": {"behavior": behavior(unit), "name": unit.name}},
        "maxReplicaCount": scaling.effective_max,
        "minReplicaCount": 0 if scaling.scale_to_zero else scaling.min_replicas,
        "pollingInterval": scaling.polling_interval_seconds,
        "scaleTargetRef": target_ref(ctx, unit),
        "triggers": _triggers(ctx, unit),
    }
    if scaling.scale_to_zero:
        spec["cooldownPeriod"] = scaling.idle_seconds
    return {"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject", "metadata": ctx.metadata(unit.name, unit.component), "spec": spec}


def hpa(ctx: RenderContext, unit: Unit) -> Obj:
    scaling = unit.scaling
    metric = {
        "pods": {
            "metric": {"name": HPA_METRIC_NAMES[scaling.signal]},
            "target": {"averageValue": quantity(scaling.effective_target), "type": "AverageValue"},
        },
        "type": "Pods",
    }
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": ctx.metadata(unit.name, unit.component),
        "spec": {
            "behavior": behavior(unit),
            "maxReplicas": scaling.effective_max,
            "metrics": [metric],
            "minReplicas": scaling.min_replicas,
            "scaleTargetRef": target_ref(ctx, unit),
        },
    }


def adapter_rules(ctx: RenderContext, units: list[Unit]) -> list[Obj]:
    """Rules to merge into the Prometheus Adapter's config, one ConfigMap per service."""
    signals = sorted({(u.scaling.signal, u.scaling.metric) for u in units if u.scaling.enabled and u.scaling.backend == "hpa"})
    if not signals:
        return []
    rules = {"rules": [adapter_rule(signal, metric) for signal, metric in signals]}
    return [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": ctx.metadata(f"{ctx.name}-prometheus-adapter-rules", "autoscaling"),
            "data": {"rules.yaml": yaml.safe_dump(rules, sort_keys=True)},
        }
    ]


def scaling_objects(ctx: RenderContext, units: list[Unit]) -> list[Obj]:
    # backend operator: nothing to render; the operator scales the workload itself.
    objects = [
        scaled_object(ctx, u) if u.scaling.backend == "keda" else hpa(ctx, u)
        for u in units
        if u.scaling.enabled and u.scaling.backend != "operator"
    ]
    return objects + adapter_rules(ctx, units)
