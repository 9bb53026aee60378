"""A Grafana dashboard ConfigMap (picked up by the Grafana sidecar via grafana_dashboard=1)."""

from __future__ import annotations

import json

from kubellm.render.context import Obj, RenderContext

Panel = tuple[str, str, list[tuple[str, str]]]  # title, unit, [(legend, expr)]


def _panels(ctx: RenderContext) -> list[Panel]:
    sel = ctx.promql_selector()
    pods = f'namespace="{ctx.namespace}",pod=~"{ctx.name}-.*"' if ctx.namespace else f'pod=~"{ctx.name}-.*"'

    def q(quantile: float, metric: str) -> str:
        return f"histogram_quantile({quantile}, sum by (le) (rate({metric}_bucket{{{sel}}}[5m])))"

    return [
        ("Token throughput", "tok/s", [
            ("output", f"sum(rate(vllm:generation_tokens_total{{{sel}}}[5m]))"),
            ("prompt", f"sum(rate(vllm:prompt_tokens_total{{{sel}}}[5m]))"),
        ]),
        ("Time to first token", "s", [("p50", q(0.5, "vllm:time_to_first_token_seconds")), ("p99", q(0.99, "vllm:time_to_first_token_seconds"))]),
        ("Time per output token", "s", [("p50", q(0.5, "vllm:time_per_output_token_seconds")), ("p99", q(0.99, "vllm:time_per_output_token_seconds"))]),
        ("KV-cache use", "percentunit", [("{{pod}}", f"vllm:kv_cache_usage_perc{{{sel}}}")]),
        ("Queue depth", "short", [
            ("waiting", f"sum(vllm:num_requests_waiting{{{sel}}})"),
            ("running", f"sum(vllm:num_requests_running{{{sel}}})"),
        ]),
        ("GPU memory used", "decmbytes", [("{{pod}}", f"DCGM_FI_DEV_FB_USED{{{pods}}}")]),
        ("GPU utilization", "percent", [("{{pod}}", f"DCGM_FI_DEV_GPU_UTIL{{{pods}}}")]),
        ("Error rate", "percentunit", [
            ("5xx share", f'sum(rate(http_requests_total{{{sel},status=~"5.*"}}[5m])) / sum(rate(http_requests_total{{{sel}}}[5m]))'),
        ]),
    ]


def _panel(index: int, panel: Panel) -> Obj:
    title, unit, targets = panel
    return {
        "datasource": {"type": "prometheus", "uid": "${datasource}"},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "gridPos": {"h": 8, "w": 12, "x": (index % 2) * 12, "y": (index // 2) * 8},
        "id": index + 1,
        "targets": [{"expr": expr, "legendFormat": legend, "refId": chr(65 + i)} for i, (legend, expr) in enumerate(targets)],
        "title": title,
        "type": "timeseries",
    }


def dashboard_json(ctx: RenderContext) -> Obj:
    return {
        "panels": [_panel(i, p) for i, p in enumerate(_panels(ctx))],
        "schemaVersion": 39,
        "templating": {"list": [{"name": "datasource", "query": "prometheus", "type": "datasource"}]},
        "time": {"from": "now-1h", "to": "now"},
        "title": f"LLMService {ctx.name}",
        "uid": f"kubellm-{ctx.name}"[:40],
    }


def dashboard(ctx: RenderContext) -> list[Obj]:
    if not ctx.service.spec.observability.dashboard:
        return []
    metadata = ctx.metadata(f"{ctx.name}-dashboard", "monitoring")
    metadata["labels"] = {**metadata["labels"], "grafana_dashboard": "1"}
    body = json.dumps(dashboard_json(ctx), indent=1, sort_keys=True)
    return [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata, "data": {f"{ctx.name}.json": body}}]
