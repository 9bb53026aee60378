"""The per-request series of :class:`~kubellm.gateway.telemetry.GatewayMetrics`, with their
label children made once.

``metric.labels(...)`` validates, stringifies and joins the label values and takes the
metric's lock on every call; a request records about ten series, so the lookups were 5% of
the gateway's CPU (docs/gateway.md, the profile). Here each label tuple's child is looked up
in a dict after its first use. The label sets are as bounded as the series themselves;
:meth:`HotMetrics.clear` drops every cached child when series are removed (an endpoint that
discovery no longer lists), so an increment never lands on a removed child.
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from kubellm.gateway.telemetry import GatewayMetrics

M = TypeVar("M")


class LabelCache(Generic[M]):
    """``cache(*values)`` is ``metric.labels(*values)``, made once per distinct *values*."""

    __slots__ = ("_metric", "_children")

    def __init__(self, metric: Any) -> None:
        self._metric = metric
        self._children: dict[tuple[str, ...], M] = {}

    def __call__(self, *values: str) -> M:
        child = self._children.get(values)
        if child is None:
            child = self._children[values] = self._metric.labels(*values)
        return child

    def clear(self) -> None:
        self._children.clear()


class HotMetrics:
    """Cached children of the series every request touches."""

    def __init__(self, metrics: GatewayMetrics) -> None:
        from prometheus_client import Counter, Gauge, Histogram

        self.requests: LabelCache[Counter] = LabelCache(metrics.requests)
        self.e2e: LabelCache[Histogram] = LabelCache(metrics.e2e)
        self.ttft: LabelCache[Histogram] = LabelCache(metrics.ttft)
        self.itl: LabelCache[Histogram] = LabelCache(metrics.itl)
        self.prompt_tokens: LabelCache[Counter] = LabelCache(metrics.prompt_tokens)
        self.completion_tokens: LabelCache[Counter] = LabelCache(metrics.completion_tokens)
        self.in_flight: LabelCache[Gauge] = LabelCache(metrics.in_flight)
        self.decisions: LabelCache[Counter] = LabelCache(metrics.decisions)
        self.prefix_query_blocks: LabelCache[Counter] = LabelCache(metrics.prefix_query_blocks)
        self.prefix_hit_blocks: LabelCache[Counter] = LabelCache(metrics.prefix_hit_blocks)
        self.retries: LabelCache[Counter] = LabelCache(metrics.retries)

    def clear(self) -> None:
        for cache in vars(self).values():
            cache.clear()
