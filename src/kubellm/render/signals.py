"""PromQL for each scaling signal: KEDA queries and Prometheus Adapter rules."""

from __future__ import annotations

from kubellm.render.context import RenderContext
from kubellm.render.units import Unit

# Signals summed over replicas use AverageValue (total / target = replicas); signals that are
# already per-replica means use Value (replicas x current / target).
SUMMED = {"queueDepth", "runningRequests"}

HPA_METRIC_NAMES = {
    "queueDepth": "kubellm_queue_depth",
    "kvCacheUsage": "kubellm_kv_cache_usage",
    "runningRequests": "kubellm_running_requests",
    "ttft": "kubellm_ttft_p90_seconds",
    "gpuUtilization": "kubellm_gpu_utilization",
}


def keda_query(ctx: RenderContext, unit: Unit) -> str:
    signal, metric = unit.scaling.signal, unit.scaling.metric
    sel = ctx.promql_selector(unit.component)
    if signal in SUMMED:
        return f"sum({metric}{{{sel}}})"
    if signal == "kvCacheUsage":
        return f"avg({metric}{{{sel}}})"
    if signal == "ttft":
        return f"histogram_quantile(0.9, sum by (le) (rate({metric}_bucket{{{sel}}}[2m])))"
    namespace = f'namespace="{ctx.namespace}",' if ctx.namespace else ""
    return f'avg({metric}{{{namespace}pod=~"{unit.name}-.*"}})'


def adapter_rule(signal: str, metric: str) -> dict[str, object]:
    series = f"{metric}_bucket" if signal == "ttft" else metric
    if signal == "ttft":
        query = "histogram_quantile(0.9, sum(rate(<<.Series>>{<<.LabelMatchers>>}[2m])) by (le, <<.GroupBy>>))"
    else:
        query = "sum(<<.Series>>{<<.LabelMatchers>>}) by (<<.GroupBy>>)"
    return {
        "metricsQuery": query,
        "name": {"as": HPA_METRIC_NAMES[signal], "matches": f"^{series}$"},
        "resources": {"overrides": {"namespace": {"resource": "namespace"}, "pod": {"resource": "pod"}}},
        "seriesQuery": f'{series}{{namespace!="",pod!=""}}',
    }


def format_number(value: float) -> str:
    return f"{value:g}"


def quantity(value: float) -> str:
    """A Kubernetes quantity for *value*, exact to the milli-unit."""
    if float(value).is_integer():
        return str(int(value))
    return f"{round(value * 1000)}m"
