"""The /health and /metrics the llama-cpp-python wrapper adds, on a real uvicorn server.

A small FastAPI app stands in for llama-cpp-python's (same framework, same middleware
path) so that a request can be held open on purpose and the counts read while it is.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from kubellm.local.metrics import parse_metrics
from kubellm.local.ports import free_port

fastapi = pytest.importorskip("fastapi", reason="installed with llama-cpp-python[server] (scripts/setup/local.sh)")
uvicorn = pytest.importorskip("uvicorn")


async def test_streams_count_as_running_until_their_last_byte_and_the_rest_wait() -> None:
    from fastapi.responses import StreamingResponse

    from kubellm.local.llamacpp_server import _instrument

    release = asyncio.Event()
    app = fastapi.FastAPI()

    async def tokens() -> AsyncIterator[bytes]:
        yield b"data: first\n\n"
        await release.wait()
        yield b"data: [DONE]\n\n"

    @app.post("/v1/completions")
    async def completions() -> StreamingResponse:
        return StreamingResponse(tokens(), media_type="text/event-stream")

    _instrument(app, "m")
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    serving = asyncio.create_task(server.serve())
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(timeout=10) as client:
            while not server.started:
                await asyncio.sleep(0.05)
            assert (await client.get(base + "/health")).status_code == 200
            async with client.stream("POST", base + "/v1/completions") as one, \
                    client.stream("POST", base + "/v1/completions") as two:
                first, second = one.aiter_bytes(), two.aiter_bytes()
                await first.__anext__()
                await second.__anext__()
                metrics = parse_metrics((await client.get(base + "/metrics")).text)
                assert (metrics.running, metrics.waiting) == (1, 1)
                release.set()
                rest = [chunk async for chunk in first] + [chunk async for chunk in second]
                assert b"[DONE]" in b"".join(rest)
            metrics = parse_metrics((await client.get(base + "/metrics")).text)
            assert (metrics.running, metrics.waiting) == (0, 0)
    finally:
        server.should_exit = True
        await serving
