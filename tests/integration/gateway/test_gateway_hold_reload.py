"""Requests held while a model scales from zero, across a config reload: over real HTTP on
loopback (the real ``openai`` client), with a real ``kubellm sim`` engine brought in by
discovery and the config file reloaded by the gateway's own watcher.

A reload replaces the model's pool; a held request follows the model to the new pool (it is
released by the first endpoint discovery gives the new pool) or, when the reload removed the
model, is answered at once instead of waiting out ``activationS``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import openai
import pytest
import yaml

from kubellm.gateway.discovery import LocalDiscovery
from kubellm.gateway.serve import watch_config
from kubellm.sim import SimConfig, run_fleet

from .conftest import Running, StartGateway

COLD = {"name": "cold", "scaleFromZero": True}
OTHER = {"name": "other", "endpoints": ["http://127.0.0.1:9"]}  # never used: keeps the config valid
Reload = Callable[[list[dict[str, Any]]], Awaitable[None]]


@pytest.fixture
async def held_gateway(start_gateway: StartGateway, tmp_path: Path
                       ) -> AsyncIterator[tuple[Running, LocalDiscovery, Reload]]:
    """A gateway whose model ``cold`` has no endpoint yet, its config file watched, and a
    coroutine function that rewrites the file and returns once the gateway applied it."""
    path = tmp_path / "gateway.yaml"
    config: dict[str, Any] = {"models": [COLD, OTHER]}
    path.write_text(yaml.safe_dump(config))
    discovery = LocalDiscovery()
    gw = await start_gateway(config, discovery=[discovery])
    watcher = asyncio.ensure_future(watch_config(path, gw.app, interval_s=0.05))

    async def reload(models: list[dict[str, Any]]) -> None:
        before = gw.gateway.config
        path.write_text(yaml.safe_dump({"models": models}))
        async with asyncio.timeout(5):
            while gw.gateway.config is before:
                await asyncio.sleep(0.02)

    try:
        yield gw, discovery, reload
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher


async def _hold(gw: Running) -> asyncio.Future[Any]:
    """A completion for ``cold``, once the gateway shows it held (pending)."""
    held = asyncio.ensure_future(gw.client().completions.create(model="cold", prompt="x", max_tokens=1))
    async with aiohttp.ClientSession() as s, asyncio.timeout(5):
        while True:
            async with s.get(gw.url + "/metrics") as resp:
                if 'kubellm_gateway_pending_requests{model="cold"} 1.0' in await resp.text():
                    return held
            await asyncio.sleep(0.02)


async def test_a_held_request_is_released_by_the_reloaded_pools_first_endpoint(
        held_gateway: tuple[Running, LocalDiscovery, Reload]):
    """Before: the request stayed on the replaced pool, which discovery no longer fed, and
    waited out activationS (120 s) although the model had a ready engine."""
    gw, discovery, reload = held_gateway
    held = await _hold(gw)
    await reload([{**COLD, "aliases": ["cold-alias"]}, OTHER])
    async with run_fleet(SimConfig(model="cold", fixed_ttft_ms=5, fixed_tpot_ms=1), replicas=1) as urls:
        discovery.set_endpoints("cold", list(urls))
        reply = await asyncio.wait_for(held, 10)
        assert reply.usage is not None and reply.usage.completion_tokens == 1
        assert gw.gateway.held == {"cold": 0}


async def test_a_held_request_for_a_model_the_reload_removed_is_answered_at_once(
        held_gateway: tuple[Running, LocalDiscovery, Reload]):
    gw, _, reload = held_gateway
    held = await _hold(gw)
    await reload([OTHER])
    with pytest.raises(openai.NotFoundError, match="'cold' was removed from the gateway's config") as err:
        await asyncio.wait_for(held, 5)
    assert err.value.status_code == 404
    assert gw.gateway.held == {"cold": 0}
