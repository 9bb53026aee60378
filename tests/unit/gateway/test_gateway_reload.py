"""A config reload drops the routing state and metric series of endpoints it removes."""

from __future__ import annotations

import asyncio

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


async def test_a_request_queued_after_a_reload_gets_a_slot_freed_through_the_old_pool() -> None:
    """Requests in flight release their slot to the pool they took it from; after a reload
    that pool and the new one share a queue, so a request queued in the new one is woken."""
    from kubellm.gateway.scheduling.request import RoutingRequest

    config = {"models": [{"name": "m", "endpoints": ["http://10.0.0.1:8000"], "maxOutstandingPerEndpoint": 1}]}
    gateway = Gateway(parse_config(config))
    gateway.pools["m"].endpoints[0].healthy = True
    before = gateway.pools["m"]
    held = before.acquire_now(RoutingRequest(model="m"))
    assert held is not None
    gateway.apply_config(parse_config(config))
    after = gateway.pools["m"]
    queued = asyncio.ensure_future(after.acquire(RoutingRequest(model="m")))
    await asyncio.sleep(0)
    before.release(held.endpoint)  # what the in-flight request's proxy does
    assert (await asyncio.wait_for(queued, 1)).endpoint is held.endpoint
