"""POST /v1/embeddings through the gateway to a real HTTP engine on loopback."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from .conftest import model


class EmbeddingEngine:
    """A small aiohttp engine that stands in for an embedding engine (vLLM serving an
    embedding model), which the kubellm simulator does not simulate: it answers
    ``/v1/embeddings`` the way vLLM does, ``/health`` for the gateway's probes, an empty
    ``/metrics``, and records every embeddings body it receives."""

    VECTOR = [0.125, -0.5, 0.25, 1.0]

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.answers: list[bytes] = []
        self.url = ""

    async def embeddings(self, request: web.Request) -> web.Response:
        body = json.loads(await request.read())
        self.received.append(body)
        inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
        tokens = sum(len(str(i).split()) for i in inputs)
        answer = json.dumps({
            "id": f"embd-{len(self.received)}", "object": "list", "model": body["model"], "created": 1,
            "data": [{"index": i, "object": "embedding", "embedding": [v * (i + 1) for v in self.VECTOR]}
                     for i in range(len(inputs))],
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens, "completion_tokens": 0},
        }).encode()
        self.answers.append(answer)
        return web.Response(body=answer, content_type="application/json")

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/embeddings", self.embeddings)
        app.router.add_get("/health", lambda r: web.Response(text=""))
        app.router.add_get("/metrics", lambda r: web.Response(text="", content_type="text/plain"))
        return app


@pytest.fixture
async def embedding_engine() -> AsyncIterator[EmbeddingEngine]:
    engine = EmbeddingEngine()
    runner = web.AppRunner(engine.app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    engine.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        yield engine
    finally:
        await runner.cleanup()


async def test_embeddings_are_relayed_and_their_prompt_tokens_counted(start_gateway, embedding_engine):
    engine = embedding_engine
    gw = await start_gateway({"models": [model("e5-small", [engine.url], aliases=["embed"])]})
    async with aiohttp.ClientSession() as s:
        request = {"model": "e5-small", "input": ["the quick brown fox", "jumps"], "encoding_format": "float"}
        async with s.post(gw.url + "/v1/embeddings", json=request) as resp:
            assert resp.status == 200
            relayed = await resp.read()
        assert engine.received == [request]
        assert relayed == engine.answers[0]  # the engine's bytes, untouched
        assert json.loads(relayed)["usage"]["prompt_tokens"] == 5
    # the openai client, through an alias: the engine is sent the served name
    r = await gw.client().embeddings.create(model="embed", input="hello embedding world", encoding_format="float")
    assert r.data[0].embedding == EmbeddingEngine.VECTOR and r.usage.prompt_tokens == 3
    assert engine.received[1] == {"model": "e5-small", "input": "hello embedding world", "encoding_format": "float"}
    async with aiohttp.ClientSession() as s, s.get(gw.url + "/metrics") as resp:
        families = {f.name: f for f in text_string_to_metric_families(await resp.text())}

    def value(family: str, sample: str, **labels: str) -> float:
        return sum(s.value for s in families[family].samples
                   if s.name == sample and labels.items() <= s.labels.items())

    assert value("kubellm_prompt_tokens", "kubellm_prompt_tokens_total", model="e5-small", tenant="anonymous") == 5 + 3
    assert value("kubellm_completion_tokens", "kubellm_completion_tokens_total", model="e5-small") == 0
    assert value("kubellm_requests", "kubellm_requests_total", model="e5-small", endpoint=engine.url,
                 status="200") == 2
    assert value("kubellm_request_duration_seconds", "kubellm_request_duration_seconds_count",
                 model="e5-small", endpoint=engine.url, tenant="anonymous") == 2
