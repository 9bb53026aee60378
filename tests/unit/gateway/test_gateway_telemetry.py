"""Per-endpoint series go when their endpoint goes: label sets stay bounded as pods churn.
Tracing is set up only when an OTLP endpoint is named (spans reaching a real OTLP receiver:
tests/integration/gateway/test_gateway_otel.py)."""

from __future__ import annotations

import pytest
from prometheus_client import generate_latest

from kubellm.gateway.app import GATEWAY, build_gateway
from kubellm.gateway.config import parse_config
from kubellm.gateway.errors import ConfigError
from kubellm.gateway.telemetry import GatewayMetrics, configure_tracing, tracing_wanted


def test_forgetting_an_endpoint_drops_its_series_and_keeps_the_others() -> None:
    metrics = GatewayMetrics()
    for url in ("http://10.0.0.1:8000", "http://10.0.0.2:8000"):
        metrics.requests.labels("chat", url, "anonymous", "200").inc()
        metrics.ttft.labels("chat", url, "anonymous").observe(0.1)
        metrics.itl.labels("chat", url, "anonymous").observe(0.01)
        metrics.e2e.labels("chat", url, "anonymous").observe(1.0)
        metrics.endpoint_healthy.labels("chat", url).set(1)
    metrics.forget_endpoint("http://10.0.0.1:8000")
    text = generate_latest(metrics.registry).decode()
    assert "10.0.0.1" not in text
    for name in ("kubellm_requests_total", "kubellm_time_to_first_token_seconds_count",
                 "kubellm_inter_token_latency_seconds_count", "kubellm_request_duration_seconds_count",
                 "kubellm_endpoint_healthy"):
        assert f'{name}{{' in text and "10.0.0.2" in text.split(f"{name}{{", 1)[1].split("\n", 1)[0], name
    metrics.forget_endpoint("http://10.9.9.9:8000")  # never seen: nothing to do, no error


@pytest.mark.parametrize(("environ", "wanted"), [
    ({}, False),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, True),
    ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}, True),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "  "}, False),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318", "OTEL_SDK_DISABLED": "true"}, False),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318", "OTEL_TRACES_EXPORTER": "none"}, False),
])
def test_tracing_is_set_up_only_when_an_otlp_endpoint_is_named(environ: dict[str, str], wanted: bool) -> None:
    assert tracing_wanted(environ) is wanted
    assert (configure_tracing(environ) is not None) is wanted


def test_an_unsupported_protocol_is_refused_with_what_to_set() -> None:
    environ = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"}
    with pytest.raises(ConfigError, match="OTEL_EXPORTER_OTLP_PROTOCOL=http/json.*grpc.*4317.*http/protobuf.*4318"):
        configure_tracing(environ)


def test_without_a_tracer_provider_requests_open_no_span() -> None:
    """The default (no OTLP endpoint, no global SDK): the per-request span and propagation work
    is skipped, not done into a no-op tracer."""
    assert build_gateway(parse_config({"models": []}))[GATEWAY].tracing is False
