"""A streaming client that stops reading cannot hold an engine slot past the total timeout.

Real TCP on loopback throughout: an engine (a small aiohttp app standing in for vLLM's stream:
megabytes of SSE events, then silence) behind the real gateway, and a raw-socket client with
a small receive buffer that sends a streaming request and never reads its answer. The
gateway's backpressure stalls its writes to that client; the total timeout must still end
the exchange: the engine's connection closed, the request no longer in flight."""

from __future__ import annotations

import asyncio
import socket
import time

import httpx
import orjson
from aiohttp import web

from kubellm.gateway.relay import CLOSING_GRACE_S
from tests.integration.gateway.conftest import ServeEngine, StartGateway, model

TOTAL_S = 1.0
EVENT = b"data: " + orjson.dumps({"object": "chat.completion.chunk", "choices": [
    {"index": 0, "delta": {"content": "x" * 200}}]}) + b"\n\n"


def flooding_engine(gone: asyncio.Event) -> web.Application:
    async def chat(request: web.Request) -> web.StreamResponse:
        await request.read()
        out = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await out.prepare(request)
        try:
            for _ in range(20_000):  # about 4.6 MB: more than every buffer between here and the client
                await out.write(EVENT)
            await asyncio.Event().wait()  # and never [DONE]
        except (asyncio.CancelledError, ConnectionResetError):
            gone.set()
            raise
        return out

    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    return app


async def in_flight(url: str) -> float:
    async with httpx.AsyncClient() as client:
        text = (await client.get(url + "/metrics")).text
    lines = [line for line in text.splitlines() if line.startswith('kubellm_requests_in_flight{model="m"}')]
    return float(lines[0].split()[-1]) if lines else 0.0


async def test_a_client_that_stops_reading_is_cut_off_at_the_total_timeout(start_gateway: StartGateway,
                                                                           serve_engine: ServeEngine) -> None:
    gone = asyncio.Event()
    engine = await serve_engine(flooding_engine(gone))
    gw = await start_gateway({"models": [model("m", [engine])], "timeouts": {"totalS": TOTAL_S}})
    port = int(gw.url.rsplit(":", 1)[1])
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
        body = orjson.dumps({"model": "m", "stream": True, "messages": [{"role": "user", "content": "hi"}]})
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
        started = time.monotonic()
        await asyncio.sleep(0.3)
        assert await in_flight(gw.url) == 1  # streaming, stalled on the client
        await asyncio.wait_for(gone.wait(), TOTAL_S + CLOSING_GRACE_S + 5)
        for _ in range(50):
            if await in_flight(gw.url) == 0:
                break
            await asyncio.sleep(0.1)
        waited = time.monotonic() - started
        assert await in_flight(gw.url) == 0
        assert waited < TOTAL_S + CLOSING_GRACE_S + 3, waited
