"""Translation of EndpointSlices into pool URL lists (the watch itself needs an API server)."""

from __future__ import annotations

import pytest
from lightkube.models.discovery_v1 import Endpoint, EndpointConditions, EndpointPort, EndpointSlice
from lightkube.models.meta_v1 import ObjectMeta

from kubellm.gateway.errors import ConfigError
from kubellm.gateway.k8s import SliceBook, parse_selector, slice_urls


def _slice(name: str, labels: dict[str, str], addrs: list[tuple[str, bool | None]],
           ports: list[tuple[str | None, int]]) -> EndpointSlice:
    return EndpointSlice(
        addressType="IPv4", metadata=ObjectMeta(name=name, namespace="ns", labels=labels),
        endpoints=[Endpoint(addresses=[a], conditions=EndpointConditions(ready=r)) for a, r in addrs],
        ports=[EndpointPort(name=n, port=p) for n, p in ports])


def test_ready_addresses_on_the_named_port():
    es = _slice("s", {}, [("10.0.0.2", True), ("10.0.0.1", None), ("10.0.0.3", False), ("fd00::1", True)],
                [("metrics", 9000), ("http", 8000)])
    assert slice_urls(es, "http") == ["http://10.0.0.1:8000", "http://10.0.0.2:8000", "http://[fd00::1]:8000"]


@pytest.mark.parametrize(("ports", "expected"), [([(None, 8000)], ["http://10.0.0.1:8000"]),
                                                  ([("a", 1), ("b", 2)], [])])
def test_port_fallback(ports, expected):
    assert slice_urls(_slice("s", {}, [("10.0.0.1", True)], ports), "http") == expected


def test_book_merges_slices_per_pool_and_handles_roles_and_deletes():
    book = SliceBook("kubellm.dev/model", "http")
    a = _slice("a", {"kubellm.dev/model": "llama"}, [("10.0.0.1", True)], [("http", 8000)])
    b = _slice("b", {"kubellm.dev/model": "llama"}, [("10.0.0.2", True)], [("http", 8000)])
    p = _slice("p", {"kubellm.dev/model": "pd", "kubellm.dev/role": "prefill"}, [("10.0.1.1", True)],
               [("http", 8000)])
    assert book.apply("ADDED", a) == ("llama", ["http://10.0.0.1:8000"])
    assert book.apply("ADDED", b) == ("llama", ["http://10.0.0.1:8000", "http://10.0.0.2:8000"])
    assert book.apply("ADDED", p) == ("pd/prefill", ["http://10.0.1.1:8000"])
    assert book.apply("DELETED", a) == ("llama", ["http://10.0.0.2:8000"])
    assert book.apply("ADDED", _slice("x", {}, [("10.9.9.9", True)], [("http", 1)])) is None


def test_selector_parsing():
    assert parse_selector("a=b, c=d") == {"a": "b", "c": "d"}
    with pytest.raises(ConfigError, match="key=value"):
        parse_selector("a!=b")
    with pytest.raises(ConfigError):
        parse_selector("a==b")


def test_pool_for_label_maps_label_safe_names_back():
    from kubellm.gateway.k8s import pool_for_label

    pools = ["meta-llama/Llama-3.1-8B", "pd/prefill", "plain"]
    assert pool_for_label("meta-llama-Llama-3.1-8B", pools) == "meta-llama/Llama-3.1-8B"
    assert pool_for_label("pd/prefill", pools) == "pd/prefill"
    assert pool_for_label("nope", pools) is None
