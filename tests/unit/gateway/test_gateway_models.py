"""Canary splits (gateway/models.py): each side's share is its weight within one request over
any run of requests, for any weights, from any starting point."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from kubellm.gateway.app import Gateway
from kubellm.gateway.config import parse_config
from kubellm.gateway.models import ModelTable


def _table(splits: list[tuple[str, float]], seed: int) -> ModelTable:
    models = [{"name": "main", "canary": [{"model": m, "weight": w} for m, w in splits]}]
    config = parse_config({"models": models + [{"name": m} for m, _ in splits]})
    return ModelTable(config, random.Random(seed))


@pytest.mark.parametrize("splits", [[("c", 20.0)], [("c", 50.0)], [("c", 3.0)], [("c", 99.0)], [("c", 12.5), ("d", 30.0)]])
@pytest.mark.parametrize("seed", [0, 1, 7])
def test_every_run_of_requests_splits_as_the_weights_within_one_request(splits: list[tuple[str, float]], seed: int) -> None:
    table = _table(splits, seed)
    sent = [table.resolve("main").model.name for _ in range(1000)]
    weights = dict(splits) | {"main": 100.0 - sum(w for _, w in splits)}
    for start, length in ((0, 200), (137, 200), (500, 31), (0, 1000)):
        counts = Counter(sent[start:start + length])
        for side, weight in weights.items():
            assert abs(counts[side] - length * weight / 100) <= 1.0, (side, start, length, counts)


def test_a_canary_keeps_the_client_facing_name_and_gets_its_served_name_upstream() -> None:
    config = parse_config({"models": [{"name": "m", "canary": [{"model": "m-canary", "weight": 100}]},
                                      {"name": "m-canary", "servedName": "m"}]})
    target = ModelTable(config, random.Random(0)).resolve("m")
    assert (target.model.name, target.upstream_model) == ("m-canary", "m")


def test_a_canary_pool_with_no_routable_endpoint_gets_no_request() -> None:
    """A promotion retires the canary's engines before every gateway has the config without it."""
    config = parse_config({"models": [{"name": "m", "canary": [{"model": "c", "weight": 60}]}, {"name": "c"}]})
    up = {"c": True}
    table = ModelTable(config, random.Random(0), routable=lambda pool: up[pool])
    assert Counter(table.resolve("m").model.name for _ in range(100)) == {"c": 60, "m": 40}
    up["c"] = False
    assert {table.resolve("m").model.name for _ in range(100)} == {"m"}


def test_a_disaggregated_canary_is_routable_when_both_its_pools_are() -> None:
    """A canary served prefill/decode has no pool named after it (before: KeyError, a 500 for
    every request the split sent there); it gets its share while both its pools have an endpoint."""
    config = parse_config({"models": [
        {"name": "m", "endpoints": ["http://10.0.0.1:8000"], "canary": [{"model": "pd", "weight": 50}]},
        {"name": "pd", "disaggregation": {"prefillEndpoints": ["http://10.0.0.2:8000"],
                                          "decodeEndpoints": ["http://10.0.0.3:8000"]}}]})
    up = {"m": True, "pd/prefill": True, "pd/decode": True}
    table = ModelTable(config, random.Random(0), routable=lambda pool: up[pool])
    assert Counter(table.resolve("m").model.name for _ in range(100)) == {"pd": 50, "m": 50}
    up["pd/decode"] = False
    assert {table.resolve("m").model.name for _ in range(100)} == {"m"}
    gateway = Gateway(config, rng=random.Random(0))  # the gateway's own wiring: its pools' health
    for pool in gateway.pools.values():
        for ep in pool.endpoints:
            ep.healthy = True
    assert Counter(gateway.models.resolve("m").model.name for _ in range(100)) == {"pd": 50, "m": 50}
