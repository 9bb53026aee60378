"""The latency learner's figures as Prometheus metrics, read when scraped (no per-request cost).

- ``kubellm_routing_engine_metrics_fallback_total{endpoint,reason}``: routing decisions that
  used the gateway's own counts for an endpoint because its engine metrics were missing
  (``unscraped``) or nonsense (``not_finite``, ``negative``), or its decode-time histogram
  counter went backwards (``counter_backwards``).
- ``kubellm_ttft_prediction_observations_total``: requests whose measured TTFT trained the model.
- ``kubellm_ttft_prediction_abs_error_seconds{quantile}`` and
  ``kubellm_ttft_prediction_rel_error{quantile}``: |predicted - measured| TTFT over the last
  2,000 such requests, in seconds and as a share of the measured TTFT (quantiles 0.5, 0.9).
- ``kubellm_ttft_model_coefficient{endpoint,term}``: each endpoint's learned coefficients
  (term ``fixed_s``, ``prefill_s_per_1k_tokens``, ``s_per_batched_request``, ``queue_wait``,
  and ``offset_s``, all the pool's) and
  ``kubellm_ttft_model_decode_seconds{endpoint}``, its D_e.
- ``kubellm_prefix_index_horizon_blocks{endpoint}``: the age (blocks allocated there since) past
  which the approximate prefix index takes a block as evicted, learned from the engines'
  reported cached tokens (+Inf until an engine contradicted it).
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from kubellm.gateway.scheduling.learner import LatencyState


_TERMS = ("fixed_s", "prefill_s_per_1k_tokens", "s_per_batched_request", "queue_wait")


class PredictionCollector(Collector):
    def __init__(self, state: LatencyState) -> None:
        self._state = state

    def collect(self) -> Iterator[Metric]:
        s = self._state
        fallback = CounterMetricFamily(
            "kubellm_routing_engine_metrics_fallback",
            "Routing decisions that used the gateway's own counts for an endpoint: its engine metrics "
            "were missing or nonsense, or a histogram counter went backwards.", labels=["endpoint", "reason"])
        for (endpoint, reason), n in sorted(s.fallbacks.items()):
            fallback.add_metric([endpoint, reason], n)
        yield fallback
        yield CounterMetricFamily("kubellm_ttft_prediction_observations",
                                  "Requests whose measured TTFT trained the latency model.", value=s.observations)
        absolute = GaugeMetricFamily("kubellm_ttft_prediction_abs_error_seconds",
                                     "|predicted - measured| TTFT over recent requests.", labels=["quantile"])
        relative = GaugeMetricFamily("kubellm_ttft_prediction_rel_error",
                                     "|predicted - measured| / measured TTFT over recent requests.",
                                     labels=["quantile"])
        for q in (0.5, 0.9):
            a, r = s.error_quantiles(q)
            absolute.add_metric([str(q)], a)
            relative.add_metric([str(q)], r)
        yield absolute
        yield relative
        coefficient = GaugeMetricFamily("kubellm_ttft_model_coefficient",
                                        "The TTFT model's learned coefficients per endpoint.",
                                        labels=["endpoint", "term"])
        decode = GaugeMetricFamily("kubellm_ttft_model_decode_seconds",
                                   "Seconds a request decodes after its first token, per endpoint (D_e).",
                                   labels=["endpoint"])
        horizon = GaugeMetricFamily("kubellm_prefix_index_horizon_blocks",
                                    "Age in blocks past which the approximate prefix index takes a block as "
                                    "evicted at an endpoint (+Inf: not contradicted yet).", labels=["endpoint"])
        for url, st in sorted(s.endpoints.items()):
            for term, value in zip(_TERMS, st.fit.coefficients()):
                coefficient.add_metric([url, term], value)
            coefficient.add_metric([url, "offset_s"], st.pool.offset_s)
            decode.add_metric([url], st.decode_s)
            if s.approximate is not None:
                horizon.add_metric([url], s.approximate.horizon(url))
        yield coefficient
        yield decode
        yield horizon


def register_prediction_metrics(registry: CollectorRegistry, state: LatencyState) -> None:
    registry.register(PredictionCollector(state))
