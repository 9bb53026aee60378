"""Rendered Services carry what the gateway's Kubernetes discovery selects on. The
EndpointSlice controller copies a Service's labels and port names onto its slices; the test
builds such a slice from each rendered Service and feeds it to the gateway's own pure
translation (kubellm.gateway.k8s), with the gateway's default discovery settings."""

from __future__ import annotations

from typing import Any

import pytest

from kubellm.gateway.config import KubernetesDiscovery
from kubellm.gateway.k8s import parse_selector, slice_pool, slice_urls
from kubellm.render.context import label_value


def slice_of(service: dict[str, Any]) -> dict[str, Any]:
    port = service["spec"]["ports"][0]
    return {
        "metadata": {"name": service["metadata"]["name"] + "-abcde", "labels": dict(service["metadata"]["labels"])},
        "ports": [{"name": port["name"], "port": 8000}],
        "endpoints": [{"addresses": ["10.0.0.7"], "conditions": {"ready": True}}],
    }


def discovered(objects: list[dict[str, Any]]) -> dict[str, list[str]]:
    settings = KubernetesDiscovery()
    wanted = parse_selector(settings.label_selector)
    pools: dict[str, list[str]] = {}
    for service in (o for o in objects if o["kind"] == "Service"):
        es = slice_of(service)
        if all(es["metadata"]["labels"].get(k) == v for k, v in wanted.items()):
            pool = slice_pool(es, settings.model_label)
            assert pool is not None
            pools[pool] = slice_urls(es, settings.port_name)
    return pools


@pytest.mark.parametrize(("example", "pools"), [
    ("quickstart", {"tiny-chat"}),
    ("disaggregated", {"Qwen2.5-32B-Instruct/prefill", "Qwen2.5-32B-Instruct/decode"}),
    ("canary-gateway", {"mistral-7b-instruct", "mistral-7b-instruct-canary"}),
    ("llama-70b-multinode", {"Llama-3.1-70B-Instruct"}),
])
def test_gateway_discovery_finds_each_rendered_pool(example: str, pools: set[str], rendered: dict[str, list[dict[str, Any]]]) -> None:
    found = discovered(rendered[example])
    assert set(found) == pools
    assert all(urls == ["http://10.0.0.7:8000"] for urls in found.values())


@pytest.mark.parametrize(("text", "expected"), [
    ("meta-llama/Llama-3.1-8B", "meta-llama-Llama-3.1-8B"),
    ("model:v2", "model-v2"),
    ("-x-", "x"),
    ("a" * 80, "a" * 63),
])
def test_label_values_are_valid(text: str, expected: str) -> None:
    assert label_value(text) == expected
