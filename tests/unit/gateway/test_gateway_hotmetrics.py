"""Cached label children (gateway/hotmetrics.py): the same series as ``labels()``, and none
lost when an endpoint's series are removed."""

from __future__ import annotations

from kubellm.gateway.app import Gateway
from kubellm.gateway.config import parse_config
from kubellm.gateway.hotmetrics import HotMetrics
from kubellm.gateway.telemetry import GatewayMetrics

URL = "http://10.0.0.1:8000"
LABELS = {"model": "m", "endpoint": URL, "tenant": "anonymous", "status": "200"}


def test_a_cached_child_is_the_labelled_series():
    metrics = GatewayMetrics()
    hot = HotMetrics(metrics)
    hot.requests("m", URL, "anonymous", "200").inc()
    hot.requests("m", URL, "anonymous", "200").inc(2)
    metrics.requests.labels("m", URL, "anonymous", "200").inc()
    assert metrics.registry.get_sample_value("kubellm_requests_total", LABELS) == 4
    assert hot.requests("m", URL, "anonymous", "200") is hot.requests("m", URL, "anonymous", "200")


def test_an_endpoint_dropped_by_discovery_loses_no_later_increment():
    gateway = Gateway(parse_config({"models": [{"name": "m", "endpoints": [URL]}]}))
    gateway.hot.requests("m", URL, "anonymous", "200").inc()
    gateway.set_endpoints("m", [])  # its series are removed...
    assert gateway.metrics.registry.get_sample_value("kubellm_requests_total", LABELS) is None
    gateway.hot.requests("m", URL, "anonymous", "200").inc()  # ...and a late request's count is kept
    assert gateway.metrics.registry.get_sample_value("kubellm_requests_total", LABELS) == 1
