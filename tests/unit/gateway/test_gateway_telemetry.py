"""Per-endpoint series go when their endpoint goes: label sets stay bounded as pods churn."""

from __future__ import annotations

from prometheus_client import generate_latest

from kubellm.gateway.telemetry import GatewayMetrics


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
