"""The operator autoscaler's /metrics scraper against real HTTP servers on loopback: one
pooled connection reused across ticks, a failing or absent pod read as no answer, and the
pods of one look scraped at once (a hanging pod costs one timeout, not one per pod)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from kubellm.operator.autoscaler import HttpScraper, OperatorAutoscaler


async def serve(handler: Callable[[web.Request], Awaitable[web.Response]]) -> TestServer:
    app = web.Application()
    app.router.add_get("/metrics", handler)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    return server


@pytest.fixture
async def scraper() -> AsyncIterator[HttpScraper]:
    s = HttpScraper(timeout_s=1.0)
    yield s
    await s.aclose()


async def test_one_connection_serves_every_tick(scraper: HttpScraper) -> None:
    peers: set[tuple[str, int]] = set()

    async def metrics(request: web.Request) -> web.Response:
        assert request.transport is not None
        peers.add(request.transport.get_extra_info("peername"))
        return web.Response(text="vllm:num_requests_running 1\n")

    server = await serve(metrics)
    try:
        url = f"http://127.0.0.1:{server.port}/metrics"
        texts = [await scraper(url) for _ in range(3)]
    finally:
        await server.close()
    assert texts == ["vllm:num_requests_running 1\n"] * 3
    assert len(peers) == 1  # the same client socket each time: kept alive, not reconnected


async def test_an_error_status_or_a_closed_port_is_no_answer(scraper: HttpScraper) -> None:
    async def broken(request: web.Request) -> web.Response:
        return web.Response(status=500, text="boom")

    server = await serve(broken)
    port = server.port
    try:
        assert await scraper(f"http://127.0.0.1:{port}/metrics") is None
    finally:
        await server.close()
    assert await scraper(f"http://127.0.0.1:{port}/metrics") is None  # nothing listens now


class Pods:
    """The Kubernetes API's pod list, as the autoscaler reads it: ready pods whose metrics ports
    are the loopback servers (the API server is not what this test is about)."""

    def __init__(self, ports: list[int | None]) -> None:
        self.ports = ports

    async def list(self, kind: object, namespace: str, selector: dict[str, str]) -> list[dict[str, object]]:
        return [{"metadata": {"name": f"p{i}"},
                 "status": {"podIP": "127.0.0.1", "conditions": [{"type": "Ready", "status": "True"}]},
                 "spec": {"containers": [{"ports": [{"name": "http", "containerPort": port}]}]}}
                for i, port in enumerate(self.ports)]


async def test_hanging_pods_cost_one_timeout_together(scraper: HttpScraper) -> None:
    async def hangs(request: web.Request) -> web.Response:
        await asyncio.sleep(5)
        return web.Response(text="late")

    async def quick(request: web.Request) -> web.Response:
        return web.Response(text="vllm:num_requests_running 2\n")

    slow, slow2, fast = await serve(hangs), await serve(hangs), await serve(quick)
    try:
        scaler = OperatorAutoscaler(Pods([slow.port, slow2.port, fast.port]), scrape=scraper)  # type: ignore[arg-type]
        started = time.monotonic()
        ready, texts = await scaler._look("llm", {})
        took = time.monotonic() - started
    finally:
        for s in (slow, slow2, fast):
            await s.close()
    assert ready == 3 and texts == ["vllm:num_requests_running 2\n"]
    assert took < 1.8, took  # one 1 s timeout for both, not one per pod in turn
