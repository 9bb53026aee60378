"""Scrape an engine's /metrics and normalise it to the signals kubellm reads.

vLLM and the simulator export ``vllm:*`` names; llama.cpp's ``llama-server --metrics``
exports ``llamacpp:*``. Both are mapped here, at the edge, to one small record.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx
from prometheus_client.parser import text_string_to_metric_families

# metric name -> field of ReplicaMetrics; the first name present wins for a field.
_NAMES: tuple[tuple[str, str], ...] = (
    ("vllm:num_requests_waiting", "waiting"),
    ("vllm:num_requests_running", "running"),
    ("vllm:kv_cache_usage_perc", "kv_usage"),
    ("vllm:gpu_cache_usage_perc", "kv_usage"),
    ("llamacpp:requests_deferred", "waiting"),
    ("llamacpp:requests_processing", "running"),
    ("llamacpp:kv_cache_usage_ratio", "kv_usage"),
)


@dataclass(frozen=True, slots=True)
class ReplicaMetrics:
    waiting: float = 0.0
    running: float = 0.0
    kv_usage: float = 0.0


def parse_metrics(text: str) -> ReplicaMetrics:
    """The signals in a Prometheus text exposition (sums over label sets)."""
    totals: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            totals[sample.name] = totals.get(sample.name, 0.0) + float(sample.value)
    fields: dict[str, float] = {}
    for name, field_name in _NAMES:
        if name in totals and field_name not in fields:
            fields[field_name] = totals[name]
    return ReplicaMetrics(**fields)


async def scrape(client: httpx.AsyncClient, url: str) -> ReplicaMetrics | None:
    """The replica's metrics, or None when it does not answer (it may be stopping)."""
    try:
        response = await client.get(url, timeout=2.0)
    except httpx.HTTPError:
        return None
    if response.status_code != 200:
        return None
    return parse_metrics(response.text)
