"""Fixtures: real simulator engines on loopback and a real gateway in front of them."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import openai
import pytest
from aiohttp import web

from kubellm.gateway.app import GATEWAY, Activator, Gateway, build_gateway
from kubellm.gateway.config import parse_config
from kubellm.gateway.discovery import DiscoverySource


class Running:
    def __init__(self, runner: web.AppRunner, site: web.TCPSite, app: web.Application) -> None:
        self.runner, self.site, self.app = runner, site, app
        self.url = f"http://127.0.0.1:{runner.addresses[0][1]}"

    @property
    def gateway(self) -> Gateway:
        return self.app[GATEWAY]

    def client(self, key: str = "none", **kw: Any) -> openai.AsyncOpenAI:
        return openai.AsyncOpenAI(base_url=self.url + "/v1", api_key=key, max_retries=0, **kw)


StartGateway = Callable[..., Awaitable[Running]]


@pytest.fixture
async def start_gateway() -> AsyncIterator[StartGateway]:
    stack = contextlib.AsyncExitStack()

    async def start(config: dict[str, Any], *, discovery: list[DiscoverySource] | None = None,
                    activator: Activator | None = None) -> Running:
        app = build_gateway(parse_config(config), discovery=discovery or [], activator=activator)
        runner = web.AppRunner(app, handler_cancellation=True, access_log=None, shutdown_timeout=0.5)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        stack.push_async_callback(runner.cleanup)
        return Running(runner, site, app)

    async with stack:
        yield start


def model(name: str, urls: Any, **extra: Any) -> dict[str, Any]:
    return {"name": name, "endpoints": list(urls), **extra}
