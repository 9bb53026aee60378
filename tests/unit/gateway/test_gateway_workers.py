"""Merging the workers' Prometheus expositions (`--workers N`), and the port reservation."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from kubellm.gateway.telemetry import GatewayMetrics
from kubellm.gateway.workers import WorkerSlot, merge_expositions, register_worker, reserve_port


def _worker(index: int, requests: int, healthy: int, ttft: float) -> str:
    m = GatewayMetrics()
    register_worker(m.registry, WorkerSlot(index, 2, Path("/nonexistent")))
    m.requests.labels("m", "http://e:1", "anonymous", "200").inc(requests)
    m.ttft.labels("m", "http://e:1", "anonymous").observe(ttft)
    m.in_flight.labels("m").set(index + 1)
    m.endpoint_healthy.labels("m", "http://e:1").set(healthy)
    return generate_latest(m.registry).decode()


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for f in text_string_to_metric_families(text) for s in f.samples}


def test_counters_histograms_and_gauges_are_summed_health_is_the_max():
    merged = _samples(merge_expositions([_worker(0, 3, 0, 0.02), _worker(1, 4, 1, 0.3)]))
    req = ("kubellm_requests_total", (("endpoint", "http://e:1"), ("model", "m"), ("status", "200"),
                                      ("tenant", "anonymous")))
    assert merged[req] == 7
    per_request = (("endpoint", "http://e:1"), ("model", "m"), ("tenant", "anonymous"))
    assert merged[("kubellm_time_to_first_token_seconds_count", per_request)] == 2
    bucket = tuple(sorted((*per_request, ("le", "0.025"))))
    assert merged[("kubellm_time_to_first_token_seconds_bucket", bucket)] == 1  # one worker's 0.02 s
    assert merged[("kubellm_time_to_first_token_seconds_sum", per_request)] == pytest.approx(0.32)
    assert merged[("kubellm_requests_in_flight", (("model", "m"),))] == 3
    assert merged[("kubellm_endpoint_healthy", (("endpoint", "http://e:1"), ("model", "m")))] == 1
    workers = {dict(labels)["worker"] for name, labels in merged if name == "kubellm_gateway_worker"}
    assert workers == {"0", "1"}
    assert not [name for name, _ in merged if name.endswith("_created")]


def test_a_worker_s_own_estimates_are_kept_per_worker_not_summed():
    """The latency learner's gauges (its coefficients, its error quantiles) are each worker's
    estimate: merged, each keeps its value under a ``worker`` label (before: summed, so two
    workers that had both learned 0.05 s showed 0.1 s)."""
    texts = []
    for index, learned in ((0, 0.05), (1, 0.07)):
        m = GatewayMetrics()
        register_worker(m.registry, WorkerSlot(index, 2, Path("/nonexistent")))
        Gauge("kubellm_ttft_model_coefficient", "learned", ["endpoint", "term"], registry=m.registry
              ).labels("http://e:1", "fixed_s").set(learned)
        m.in_flight.labels("m").set(2)
        texts.append(generate_latest(m.registry).decode())
    merged = _samples(merge_expositions(texts))
    coefficient = {labels: v for (name, labels), v in merged.items() if name == "kubellm_ttft_model_coefficient"}
    assert coefficient == {(("endpoint", "http://e:1"), ("term", "fixed_s"), ("worker", "0")): 0.05,
                           (("endpoint", "http://e:1"), ("term", "fixed_s"), ("worker", "1")): 0.07}
    assert merged[("kubellm_requests_in_flight", (("model", "m"),))] == 4  # an additive gauge stays summed


def test_the_merge_is_valid_exposition_text_with_escaped_labels():
    r = CollectorRegistry()
    Counter("c", 'help with "quotes"\nand a newline', ["l"], registry=r).labels('a"b\\c\nd').inc()
    text = merge_expositions([generate_latest(r).decode()] * 2)
    (fam,) = list(text_string_to_metric_families(text))
    assert fam.type == "counter" and fam.documentation == 'help with "quotes"\nand a newline'
    assert [(s.labels, s.value) for s in fam.samples] == [({"l": 'a"b\\c\nd'}, 2.0)]


def test_reserved_port_is_shared_by_reuseport_listeners_only():
    reserved = reserve_port("127.0.0.1", 0)
    port = reserved.getsockname()[1]
    with reserved, socket.socket() as listener, socket.socket() as plain:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        listener.bind(("127.0.0.1", port))  # a worker binds the same port
        listener.listen()
        with pytest.raises(OSError):
            plain.bind(("127.0.0.1", port))  # anything else finds it taken


def test_a_port_in_use_is_refused_before_any_worker_starts():
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        with pytest.raises(OSError):
            reserve_port("127.0.0.1", other.getsockname()[1])
