"""PrometheusRule alerts; thresholds come from spec.slo."""

from __future__ import annotations

from kubellm.render.context import Obj, RenderContext
from kubellm.render.cost import budget_rules
from kubellm.render.signals import format_number
from kubellm.render.units import Unit

KV_CACHE_FULL = 0.95
QUEUE_ALERT_MIN = 10


def _alert(name: str, expr: str, duration: str, severity: str, summary: str) -> Obj:
    return {
        "alert": name,
        "annotations": {"description": summary, "runbook": "kubellm docs/render.md#alerts", "summary": summary},
        "expr": expr,
        "for": duration,
        "labels": {"severity": severity},
    }


def _quantile(q: float, metric: str, sel: str) -> str:
    return f"histogram_quantile({q}, sum by (le) (rate({metric}_bucket{{{sel}}}[5m])))"


def _not_ready_expr(ctx: RenderContext, units: list[Unit]) -> str:
    ns = f'namespace="{ctx.namespace}",' if ctx.namespace else ""
    names = "|".join(u.name for u in units)
    mode, strategy = ctx.service.spec.serving.mode, ctx.service.spec.rollout.strategy
    if mode == "multinode":
        # LeaderWorkerSet <name> runs the leaders in StatefulSet <name> and each group's
        # workers in StatefulSet <name>-<group index>; another service <name>-x is not ours.
        sets = f'statefulset=~"({names})(-[0-9]+)?"'
        return (
            f"sum(kube_statefulset_replicas{{{ns}{sets}}}) - "
            f"sum(kube_statefulset_status_replicas_ready{{{ns}{sets}}}) > 0"
        )
    if strategy == "argoCanary":
        return f'sum(rollout_info_replicas_unavailable{{{ns}name=~"{names}"}}) > 0'
    return f'sum(kube_deployment_status_replicas_unavailable{{{ns}deployment=~"{names}"}}) > 0'


def alert_rules(ctx: RenderContext, units: list[Unit]) -> list[Obj]:
    slo, sel, name = ctx.service.spec.slo, ctx.promql_selector(), ctx.name
    errors = f'sum(rate(http_requests_total{{{sel},status=~"5.*"}}[5m]))'
    total = f"sum(rate(http_requests_total{{{sel}}}[5m]))"
    waiting = f"sum(vllm:num_requests_waiting{{{sel}}})"
    return [
        _alert("LLMServiceHighErrorRate", f"{errors} / {total} > {format_number(slo.max_error_rate)}", "5m", "critical",
               f"{name}: share of 5xx responses above the SLO of {format_number(slo.max_error_rate)}"),
        _alert("LLMServiceTTFTP99High", f"{_quantile(0.99, 'vllm:time_to_first_token_seconds', sel)} > {format_number(slo.ttft_p99_ms / 1000)}",
               "10m", "warning", f"{name}: p99 time to first token above {format_number(slo.ttft_p99_ms)} ms"),
        _alert("LLMServiceTTFTP50High", f"{_quantile(0.5, 'vllm:time_to_first_token_seconds', sel)} > {format_number(slo.ttft_p50_ms / 1000)}",
               "10m", "warning", f"{name}: median time to first token above {format_number(slo.ttft_p50_ms)} ms"),
        _alert("LLMServiceLatencyP99High", f"{_quantile(0.99, 'vllm:time_per_output_token_seconds', sel)} > {format_number(slo.tpot_ms / 1000)}",
               "10m", "warning", f"{name}: p99 time per output token above {format_number(slo.tpot_ms)} ms"),
        _alert("LLMServiceKVCacheNearFull", f"max(vllm:kv_cache_usage_perc{{{sel}}}) > {KV_CACHE_FULL}", "10m", "warning",
               f"{name}: an engine's KV cache is over {int(KV_CACHE_FULL * 100)} % full; requests will queue or be preempted"),
        _alert("LLMServiceQueueGrowing", f"{waiting} > {QUEUE_ALERT_MIN} and delta({waiting}[10m:1m]) > 0", "10m", "warning",
               f"{name}: requests are waiting and the queue keeps growing; add replicas"),
        _alert("LLMServicePodsNotReady", _not_ready_expr(ctx, units), "15m", "critical",
               f"{name}: engine pods have been unavailable for 15 minutes"),
    ]


def rule_groups(ctx: RenderContext, units: list[Unit]) -> list[Obj]:
    """The service's alerts (when observability.alerts), then its budget alerts (spec.cost.budget)."""
    groups = []
    if ctx.service.spec.observability.alerts:
        groups.append({"name": f"kubellm-{ctx.name}", "rules": alert_rules(ctx, units)})
    budget = budget_rules(ctx, units)
    if budget:
        groups.append({"name": f"kubellm-{ctx.name}-cost", "rules": budget})
    return groups


def prometheus_rule(ctx: RenderContext, units: list[Unit]) -> list[Obj]:
    groups = rule_groups(ctx, units)
    if not groups:
        return []
    metadata = ctx.metadata(ctx.name, "monitoring")
    metadata["labels"] = {**metadata["labels"], **ctx.service.spec.observability.monitor_labels}
    return [{"apiVersion": "monitoring.coreos.com/v1", "kind": "PrometheusRule", "metadata": metadata, "spec": {"groups": groups}}]
