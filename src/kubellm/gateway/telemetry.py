"""The gateway's own Prometheus metrics (``kubellm_`` prefix, never the engines' ``vllm:``).

One registry per gateway instance, created by the composition root. Label sets stay
bounded: ``model`` is a configured model name (or ``unknown``), ``endpoint`` an engine URL
(or ``none``), ``tenant`` a configured tenant name, ``anonymous`` without auth, ``unlisted``
for a JWT tenant the config does not name, ``unknown`` before authentication; never a key.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_LAT = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
_ITL = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
_PER_REQUEST = ("model", "endpoint", "tenant")  # the histograms, as requests_total less status


class GatewayMetrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.requests = Counter("kubellm_requests", "Requests by model, endpoint, tenant and HTTP status.",
                                ["model", "endpoint", "tenant", "status"], registry=r)
        self.ttft = Histogram("kubellm_time_to_first_token_seconds", "Time to first token seen at the gateway.",
                              _PER_REQUEST, buckets=_LAT, registry=r)
        self.itl = Histogram("kubellm_inter_token_latency_seconds", "Time between streamed chunks.",
                             _PER_REQUEST, buckets=_ITL, registry=r)
        self.e2e = Histogram("kubellm_request_duration_seconds", "End-to-end request time at the gateway.",
                             _PER_REQUEST, buckets=_LAT, registry=r)
        self.prompt_tokens = Counter("kubellm_prompt_tokens", "Prompt tokens.", ["model", "tenant"], registry=r)
        self.completion_tokens = Counter("kubellm_completion_tokens", "Completion tokens.",
                                         ["model", "tenant"], registry=r)
        self.in_flight = Gauge("kubellm_requests_in_flight", "Requests being served.", ["model"], registry=r)
        self.queued = Gauge("kubellm_requests_queued", "Requests waiting for an endpoint slot.", ["model"],
                            registry=r)
        # render's KEDA ScaledObject activates a scaled-to-zero model on this series
        self.pending = Gauge("kubellm_gateway_pending_requests",
                             "Requests waiting for a model's endpoint: held while scaling from zero, or queued.",
                             ["model"], registry=r)
        self.decisions = Counter("kubellm_routing_decisions", "Routing decisions by the scorer that decided.",
                                 ["model", "reason"], registry=r)
        self.prefix_query_blocks = Counter("kubellm_prefix_query_blocks", "Prompt blocks routed.", ["model"],
                                           registry=r)
        self.prefix_hit_blocks = Counter("kubellm_prefix_hit_blocks",
                                         "Prompt blocks estimated already cached on the chosen endpoint.",
                                         ["model"], registry=r)
        self.retries = Counter("kubellm_upstream_retries", "Attempts retried on another endpoint.",
                               ["model"], registry=r)
        self.kv_events_rejected = Counter(
            "kubellm_kv_events_rejected", "KV-event batches or blocks of an engine not used as sent: reason "
            "encoding (unknown payload) or hash_mismatch (engine and gateway hash blocks differently).",
            ["endpoint", "reason"], registry=r)
        self.endpoint_healthy = Gauge("kubellm_endpoint_healthy", "1 when the endpoint passes health checks.",
                                      ["model", "endpoint"], registry=r)

    def forget_endpoint(self, url: str) -> None:
        """Drop every series of an endpoint discovery no longer lists: pods come and go with
        rollouts and autoscaling, and their series would otherwise pile up for the gateway's
        lifetime (a request still in flight to it may record one more)."""
        for metric in (self.requests, self.ttft, self.itl, self.e2e, self.endpoint_healthy, self.kv_events_rejected):
            metric.remove_by_labels({"endpoint": url})
