"""Fixtures: real simulator engines on loopback and a real gateway in front of them."""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from functools import partial
from typing import Any

import openai
import pytest
from aiohttp import web

from kubellm.gateway.app import GATEWAY, Activator, Gateway, build_gateway
from kubellm.gateway.config import GatewayConfig, parse_config
from kubellm.gateway.discovery import DiscoverySource
from kubellm.gateway.server import FastServer


# The gateway suite runs on the config's default server (the fast one, gateway/server.py);
# KUBELLM_GATEWAY_SERVER=aiohttp runs every gateway started here on aiohttp's instead, and every
# `kubellm gateway` process the tests start (the variable is that command's --server).
SERVER = os.environ.get("KUBELLM_GATEWAY_SERVER") or GatewayConfig().server


async def serve_gateway_app(app: web.Application) -> tuple[str, Callable[[], Awaitable[None]]]:
    """Serve a gateway's *app* on loopback (port 0) on the server chosen above: its URL and
    the coroutine function that stops it."""
    if SERVER == "fast":
        server = FastServer(app, max_body_bytes=app[GATEWAY].config.max_body_bytes)
        await server.startup()
        port = await server.listen("127.0.0.1", 0)
        return f"http://127.0.0.1:{port}", partial(server.cleanup, 0.5)
    runner = web.AppRunner(app, handler_cancellation=True, access_log=None, shutdown_timeout=0.5)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return f"http://127.0.0.1:{runner.addresses[0][1]}", runner.cleanup


class Running:
    def __init__(self, url: str, app: web.Application) -> None:
        self.url, self.app = url, app

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
        url, stop = await serve_gateway_app(app)
        stack.push_async_callback(stop)
        return Running(url, app)

    async with stack:
        yield start


ServeEngine = Callable[[web.Application], Awaitable[str]]


@pytest.fixture
async def serve_engine() -> AsyncIterator[ServeEngine]:
    """Serve a stand-in engine (a small aiohttp app a test writes to show one behaviour) on
    loopback, port 0: its URL. Stopped at teardown, after the test's own ``finally`` (which
    must release any handler it left hanging)."""
    runners: list[web.AppRunner] = []

    async def serve(app: web.Application) -> str:
        app.router.add_get("/health", _healthy)
        runner = web.AppRunner(app, handler_cancellation=True)  # as engines do: a closed connection aborts the request
        await runner.setup()
        runners.append(runner)
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        return f"http://127.0.0.1:{runner.addresses[0][1]}"

    yield serve
    for runner in runners:
        await runner.cleanup()


async def _healthy(request: web.Request) -> web.Response:
    return web.json_response({})


def model(name: str, urls: Any, **extra: Any) -> dict[str, Any]:
    return {"name": name, "endpoints": list(urls), **extra}
