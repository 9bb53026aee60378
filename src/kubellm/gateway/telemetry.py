"""The gateway's telemetry: its own Prometheus metrics, and OpenTelemetry traces.

**Metrics** (``kubellm_`` prefix, never the engines' ``vllm:``). One registry per gateway
instance, created by the composition root. Label sets stay bounded: ``model`` is a configured
model name (or ``unknown``), ``endpoint`` an engine URL (or ``none``), ``tenant`` a configured
tenant name, ``anonymous`` without auth, ``unlisted`` for a JWT tenant the config does not
name, ``unknown`` before authentication; never a key.

**Traces.** ``configure_tracing`` sets up the OpenTelemetry SDK when
``OTEL_EXPORTER_OTLP_ENDPOINT`` (or ``..._TRACES_ENDPOINT``) is set: a batch span processor and
the OTLP exporter of ``OTEL_EXPORTER_OTLP_PROTOCOL`` (grpc, or http/protobuf by default),
configured by the SDK from the standard ``OTEL_*`` variables (service name, resource attributes, sampler, headers, timeout, batch sizes). The
gateway then opens one server span per generation request (``request_span``), continuing the
client's ``traceparent``; the engine request carries the span's context; ``finish_span``
records the model, tenant, chosen endpoint, HTTP status and tokens. Without an endpoint
nothing is set up and requests pay for no span.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING

from opentelemetry import propagate, trace
from prometheus_client import CollectorRegistry, Counter, Gauge

from kubellm.gateway.errors import ConfigError
from kubellm.gateway.hotmetrics import HotCounter, HotGauge, HotHistogram

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter

    from kubellm.gateway.relay import Accounting

_LAT = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
_ITL = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
_PER_REQUEST = ("model", "endpoint", "tenant")  # the histograms, as requests_total less status


class GatewayMetrics:
    """The gateway's series. The ones every request records are hot families (plain numbers,
    :mod:`kubellm.gateway.hotmetrics`); the rest are ``prometheus_client`` metrics."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.requests = HotCounter("kubellm_requests", "Requests by model, endpoint, tenant and HTTP status.",
                                   ["model", "endpoint", "tenant", "status"], registry=r)
        self.ttft = HotHistogram("kubellm_time_to_first_token_seconds", "Time to first token seen at the gateway.",
                                 _PER_REQUEST, _LAT, registry=r)
        self.itl = HotHistogram("kubellm_inter_token_latency_seconds", "Time between streamed chunks.",
                                _PER_REQUEST, _ITL, registry=r)
        self.e2e = HotHistogram("kubellm_request_duration_seconds", "End-to-end request time at the gateway.",
                                _PER_REQUEST, _LAT, registry=r)
        self.prompt_tokens = HotCounter("kubellm_prompt_tokens", "Prompt tokens.", ["model", "tenant"], registry=r)
        self.completion_tokens = HotCounter("kubellm_completion_tokens", "Completion tokens.", ["model", "tenant"],
                                            registry=r)
        self.in_flight = HotGauge("kubellm_requests_in_flight", "Requests being served.", ["model"], registry=r)
        self.queued = Gauge("kubellm_requests_queued", "Requests waiting for an endpoint slot.", ["model"],
                            registry=r)
        # render's KEDA ScaledObject activates a scaled-to-zero model on this series
        self.pending = Gauge("kubellm_gateway_pending_requests",
                             "Requests waiting for a model's endpoint: held while scaling from zero, or queued.",
                             ["model"], registry=r)
        self.decisions = HotCounter("kubellm_routing_decisions", "Routing decisions by the scorer that decided.",
                                    ["model", "reason"], registry=r)
        self.prefix_query_blocks = HotCounter("kubellm_prefix_query_blocks", "Prompt blocks routed.", ["model"],
                                              registry=r)
        self.prefix_hit_blocks = HotCounter("kubellm_prefix_hit_blocks",
                                            "Prompt blocks estimated already cached on the chosen endpoint.",
                                            ["model"], registry=r)
        self.retries = HotCounter("kubellm_upstream_retries", "Attempts retried on another endpoint.", ["model"],
                                  registry=r)
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


# -- traces -------------------------------------------------------------------------------
_ENDPOINTS = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
_PROTOCOLS = ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL")
TRACER_NAME = "kubellm.gateway"


def tracing_wanted(environ: Mapping[str, str]) -> bool:
    """An OTLP endpoint is set, and neither the SDK nor the traces exporter is turned off."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    if environ.get("OTEL_TRACES_EXPORTER", "otlp").strip().lower() == "none":
        return False
    return any(environ.get(name, "").strip() for name in _ENDPOINTS)


def _protocol(environ: Mapping[str, str]) -> str:
    protocol = next((environ[n].strip() for n in _PROTOCOLS if environ.get(n, "").strip()), "http/protobuf")
    if protocol not in ("grpc", "http/protobuf"):
        raise ConfigError(
            f"OTEL_EXPORTER_OTLP_PROTOCOL={protocol}: kubellm gateway exports traces over OTLP with grpc "
            "(the collector's port 4317) or http/protobuf (port 4318); set one of those")
    return protocol


def _exporter(protocol: str) -> SpanExporter:
    """The OTLP span exporter of *protocol*; it reads its endpoint, headers, timeout... from OTEL_*."""
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter

        return GrpcExporter()
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter

    return HttpExporter()


def configure_tracing(environ: Mapping[str, str]) -> TracerProvider | None:
    """An SDK tracer provider exporting over OTLP (``OTEL_EXPORTER_OTLP_PROTOCOL``: grpc or
    http/protobuf, the default) when *environ* names an endpoint, else None. The caller owns
    it (``shutdown()`` flushes). Not installed globally: the gateway is handed its tracer
    (``build_gateway(tracer=...)``)."""
    if not tracing_wanted(environ):
        return None
    exporter = _exporter(_protocol(environ))
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider()  # resource and sampler from OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES...
    provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


@contextmanager
def request_span(tracer: trace.Tracer, headers: Mapping[str, str], kind: str) -> Iterator[trace.Span]:
    """The server span of one request, child of the client's ``traceparent`` if it sent one;
    current while the request runs, so the engine request carries it."""
    with tracer.start_as_current_span(f"gateway {kind}", context=propagate.extract(headers),
                                      kind=trace.SpanKind.SERVER, record_exception=False,
                                      set_status_on_exception=True) as span:
        yield span


def finish_span(span: trace.Span, acct: Accounting, asked_model: str | None) -> None:
    """What the request did: model (asked and configured), tenant, endpoint, status, tokens."""
    attributes: dict[str, str | int] = {
        "kubellm.model": acct.model, "kubellm.tenant": acct.tenant, "kubellm.endpoint": acct.endpoint,
        "http.response.status_code": acct.status,
        "gen_ai.usage.input_tokens": acct.prompt_tokens, "gen_ai.usage.output_tokens": acct.completion_tokens,
    }
    if asked_model is not None:
        attributes["gen_ai.request.model"] = asked_model
    span.set_attributes(attributes)
    if acct.status >= 500:
        span.set_status(trace.StatusCode.ERROR, f"HTTP {acct.status}")
