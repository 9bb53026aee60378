"""A config reload drops the routing state and metric series of endpoints it removes."""

from __future__ import annotations

from kubellm.gateway.app import Gateway
from kubellm.gateway.config import parse_config


def _config(urls: list[str]) -> dict[str, object]:
    return {"models": [{"name": "m", "endpoints": urls}]}


def _series(gateway: Gateway, url: str) -> int:
    return sum(1 for family in gateway.metrics.registry.collect() for s in family.samples
               if s.labels.get("endpoint") == url)


def test_a_reload_that_drops_a_static_endpoint_forgets_it() -> None:
    gone, kept = "http://10.0.0.2:8000", "http://10.0.0.1:8000"
    gateway = Gateway(parse_config(_config([kept, gone])))
    for url in (kept, gone):
        gateway.routing.prefix.record(url, (1, 2))
        gateway.metrics.endpoint_healthy.labels(model="m", endpoint=url).set(1)
    gateway.apply_config(parse_config(_config([kept])))
    assert [e.url for e in gateway.pools["m"].endpoints] == [kept]
    assert gateway.routing.prefix.matched_blocks((1, 2), [kept, gone]) == {kept: 2, gone: 0}
    assert _series(gateway, gone) == 0 and _series(gateway, kept) == 1
