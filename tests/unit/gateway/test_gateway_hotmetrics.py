"""The hot families (gateway/hotmetrics.py): exposed exactly as ``prometheus_client``'s own
Counter, Gauge and Histogram expose the same updates, and no increment lost when an
endpoint's series are removed."""

from __future__ import annotations

import re

import pytest
from prometheus_client import (CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics,
                               enable_created_metrics, generate_latest)

from kubellm.gateway.app import Gateway
from kubellm.gateway.config import parse_config
from kubellm.gateway.hotmetrics import HotCounter, HotGauge, HotHistogram
from kubellm.gateway.telemetry import GatewayMetrics

URL = "http://10.0.0.1:8000"
LABELS = {"model": "m", "endpoint": URL, "tenant": "anonymous", "status": "200"}
BOUNDS = (0.005, 0.01, 0.25, 1.0)
OBSERVED = (0.0, 0.001, 0.005, 0.0050001, 0.01, 0.3, 1.0, 7.5, 1e9)


def _exposition(registry: CollectorRegistry) -> list[str]:
    text = generate_latest(registry).decode()
    return sorted(re.sub(r"(_created(?:\{[^}]*\})?) \S+", r"\1 T", text).splitlines())


def test_the_hot_families_expose_what_prometheus_clients_own_metrics_do():
    theirs, ours = CollectorRegistry(), CollectorRegistry()
    pairs = [
        (Counter("c", "a counter", ["a", "b"], registry=theirs),
         HotCounter("c", "a counter", ["a", "b"], registry=ours)),
        (Gauge("g", "a gauge", ["a"], registry=theirs), HotGauge("g", "a gauge", ["a"], registry=ours)),
        (Histogram("h", "a histogram", ["a"], buckets=BOUNDS, registry=theirs),
         HotHistogram("h", "a histogram", ["a"], BOUNDS, registry=ours)),
    ]
    (pc, hc), (pg, hg), (ph, hh) = pairs
    for metric in (pc, hc):
        metric.labels("x", "y").inc()
        metric.labels("x", "y").inc(2.5)
        metric.labels("x", "z").inc(0)
    for metric in (pg, hg):
        metric.labels("x").inc(3)
        metric.labels("x").dec()
    for metric in (ph, hh):
        for value in OBSERVED:
            metric.labels("x").observe(value)
        metric.labels("empty")
    assert _exposition(ours) == _exposition(theirs)
    assert ours.get_sample_value("h_bucket", {"a": "x", "le": "0.005"}) == 3  # a bound is inclusive
    assert ours.get_sample_value("h_count", {"a": "x"}) == len(OBSERVED)


def test_a_series_is_made_once_and_checked():
    family = HotCounter("c", "a counter", ["a"])
    assert family.labels("x") is family.labels("x")
    with pytest.raises(ValueError, match="takes labels"):
        family.labels("x", "y")
    with pytest.raises(ValueError, match="non-negative"):
        family.labels("x").inc(-1)


def test_remove_by_labels_drops_only_the_matching_series():
    family = HotCounter("c", "a counter", ["endpoint", "status"])
    family.labels("a", "200").inc()
    family.labels("b", "200").inc()
    family.remove_by_labels({"endpoint": "a"})
    assert list(family.series) == [("b", "200")]
    with pytest.raises(ValueError, match="nolabel"):  # as prometheus_client's own metrics
        family.remove_by_labels({"nolabel": "b"})
    assert list(family.series) == [("b", "200")]


def test_the_gateways_series_read_through_the_registry():
    metrics = GatewayMetrics()
    metrics.requests.labels("m", URL, "anonymous", "200").inc()
    metrics.requests.labels("m", URL, "anonymous", "200").inc(2)
    assert metrics.registry.get_sample_value("kubellm_requests_total", LABELS) == 3


def test_an_endpoint_dropped_by_discovery_loses_no_later_increment():
    gateway = Gateway(parse_config({"models": [{"name": "m", "endpoints": [URL]}]}))
    gateway.metrics.requests.labels("m", URL, "anonymous", "200").inc()
    gateway.set_endpoints("m", [])  # its series are removed...
    assert gateway.metrics.registry.get_sample_value("kubellm_requests_total", LABELS) is None
    gateway.metrics.requests.labels("m", URL, "anonymous", "200").inc()  # ...and a late request's count is kept
    assert gateway.metrics.registry.get_sample_value("kubellm_requests_total", LABELS) == 1


def test_a_hot_familys_names_are_registered_like_any_metrics():
    """The registry knows a hot family's names, as a ``prometheus_client`` metric's: a second
    metric of the same name is refused (it was exposed twice), and a scrape restricted to
    names (``restricted_registry``, ``?name[]=``) includes the family (it was left out)."""
    metrics = GatewayMetrics()
    with pytest.raises(ValueError, match="Duplicated timeseries"):
        Counter("kubellm_requests", "again", registry=metrics.registry)
    metrics.requests.labels("m", URL, "anonymous", "200").inc()
    restricted = metrics.registry.restricted_registry(["kubellm_requests_total"])
    assert [(s.name, s.labels, s.value) for m in restricted.collect() for s in m.samples] == [
        ("kubellm_requests_total", LABELS, 1.0)]


def test_created_samples_follow_prometheus_clients_switch():
    """``PROMETHEUS_DISABLE_CREATED_SERIES`` (``disable_created_metrics()``) drops the
    ``_created`` samples of the hot families too, as of ``prometheus_client``'s own."""
    theirs, ours = CollectorRegistry(), CollectorRegistry()
    disable_created_metrics()
    try:
        Counter("c", "a counter", ["a"], registry=theirs).labels("x").inc()
        Histogram("h", "a histogram", ["a"], buckets=BOUNDS, registry=theirs).labels("x").observe(0.1)
        HotCounter("c", "a counter", ["a"], registry=ours).labels("x").inc()
        HotHistogram("h", "a histogram", ["a"], BOUNDS, registry=ours).labels("x").observe(0.1)
        assert _exposition(ours) == _exposition(theirs)
        assert "_created" not in generate_latest(ours).decode()
    finally:
        enable_created_metrics()
