"""Prometheus Operator PodMonitor or ServiceMonitor for the engines' /metrics."""

from __future__ import annotations

from kubellm.render.context import Obj, RenderContext
from kubellm.render.engine_pod import PORT_NAME
from kubellm.render.security import ENGINE_COMPONENTS

# Copied onto every series, so queries and alerts select one service's engines.
TARGET_LABELS = ["app.kubernetes.io/component", "app.kubernetes.io/instance"]


def monitor(ctx: RenderContext) -> list[Obj]:
    observability = ctx.service.spec.observability
    if observability.monitor == "none":
        return []
    metadata = ctx.metadata(ctx.name, "monitoring")
    metadata["labels"] = {**metadata["labels"], **observability.monitor_labels}
    selector = {
        "matchExpressions": [{"key": "app.kubernetes.io/component", "operator": "In", "values": ENGINE_COMPONENTS}],
        "matchLabels": {"app.kubernetes.io/instance": ctx.name},
    }
    endpoint = {"interval": f"{observability.scrape_interval_seconds}s", "path": "/metrics", "port": PORT_NAME}
    spec: Obj = {"podTargetLabels": TARGET_LABELS, "selector": selector}
    if ctx.namespace:
        spec["namespaceSelector"] = {"matchNames": [ctx.namespace]}
    if observability.monitor == "podMonitor":
        spec["podMetricsEndpoints"] = [endpoint]
        kind = "PodMonitor"
    else:
        spec["endpoints"] = [endpoint]
        kind = "ServiceMonitor"
    return [{"apiVersion": "monitoring.coreos.com/v1", "kind": kind, "metadata": metadata, "spec": spec}]
