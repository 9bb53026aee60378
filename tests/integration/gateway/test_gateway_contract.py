"""The gateway's and the simulator's HTTP contracts (docs/openapi/, written by
kubellm.gateway.openapi) against the real servers on loopback: real simulator engines, a
real gateway in front of them, a real HTTP client.

- the published documents are the generated ones, and list exactly the routes each
  application registers (a route added without its contract fails here);
- every route is fuzzed from its request schema (schema_strategies: valid bodies, bodies
  broken in one place, arbitrary JSON, bytes that are no JSON, stray query strings and
  headers, now and then the wrong method): no 5xx; every 4xx body is the OpenAI error
  object of the document; every 200 JSON body matches the route's response schema; every
  stream ends with ``data: [DONE]``; afterwards the server is healthy, holds no request in
  flight, and serves a real openai client.

Budget: ``KUBELLM_FUZZ_EXAMPLES`` requests per route (default 100, what CI runs; the
2,000-per-route run is ``KUBELLM_FUZZ_EXAMPLES=2000``)."""

from __future__ import annotations

import asyncio
import json
import os
import threading
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import jsonschema
import openai
import pytest
from aiohttp import web
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from kubellm.gateway.app import GATEWAY, build_gateway
from kubellm.gateway.config import parse_config
from kubellm.gateway.openapi import DOCUMENTS, gateway_document, render_document, sim_document
from kubellm.sim import SimConfig
from kubellm.sim.fleet import Fleet, build_server, start_fleet, stop_fleet
from kubellm.sim import textgen

from .conftest import model, serve_gateway_app
from .schema_strategies import TEXT, request_bodies

ROOT = Path(__file__).resolve().parents[3]
EXAMPLES = int(os.environ.get("KUBELLM_FUZZ_EXAMPLES", "100"))
MODEL = "m"
T = TypeVar("T")


class Background:
    """An event loop in a thread for the servers, so hypothesis drives them with a blocking
    client from the test's own thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=60)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()


@dataclass
class Servers:
    sim: str
    gateway: str
    app: web.Application
    fleet: Fleet


async def _start_gateway(urls: list[str]) -> tuple[web.Application, str, Callable[[], Awaitable[None]]]:
    app = build_gateway(parse_config({"models": [model(MODEL, urls)], "maxBodyBytes": 200_000}))
    url, stop = await serve_gateway_app(app)
    return app, url, stop


@pytest.fixture(scope="module")
def servers() -> Iterator[Servers]:
    background = Background()
    fleet = background.run(start_fleet(SimConfig(model=MODEL, fixed_ttft_ms=0, fixed_tpot_ms=0, max_model_len=4096), replicas=2))
    app, url, stop = background.run(_start_gateway(list(fleet)))
    try:
        yield Servers(fleet[0], url, app, fleet)
    finally:
        background.run(stop())
        background.run(stop_fleet(fleet.servers))
        background.close()


def operations(doc: dict[str, Any]) -> list[tuple[str, str]]:
    return sorted((path, method.upper()) for path, item in doc["paths"].items() for method in item)


def registered(app: web.Application) -> list[tuple[str, str]]:
    """(path, method) of every route *app* serves (aiohttp adds HEAD beside each GET)."""
    return sorted({(r.resource.canonical, r.method) for r in app.router.routes() if r.method != "HEAD" and r.resource})


@pytest.mark.parametrize("name", sorted(DOCUMENTS))
def test_the_published_documents_are_the_generated_ones(name: str) -> None:
    published = (ROOT / "docs" / "openapi" / name).read_text()
    assert published == render_document(name), f"run: python -m kubellm.gateway.openapi docs/openapi ({name} is stale)"


def test_the_documents_list_exactly_the_routes_the_applications_serve() -> None:
    gateway_app = build_gateway(parse_config({"models": [model(MODEL, ["http://127.0.0.1:9"])]}))
    assert registered(gateway_app) == operations(gateway_document())
    sim_app = build_server(SimConfig(model=MODEL), 0, textgen.build_vocab()).build_app()
    assert registered(sim_app) == operations(sim_document())


def _validate(doc: dict[str, Any], schema: dict[str, Any], value: Any) -> None:
    jsonschema.validate(value, {**schema, "components": doc["components"]})


def _response_schema(doc: dict[str, Any], path: str, method: str) -> dict[str, Any] | None:
    content: dict[str, dict[str, Any]] = doc["paths"][path][method.lower()]["responses"]["200"].get("content", {})
    schema: dict[str, Any] | None = content.get("application/json", {}).get("schema")
    return schema


def _check_answer(doc: dict[str, Any], path: str, method: str, response: httpx.Response) -> None:
    assert response.status_code < 500, (path, response.status_code, response.text[:300])
    if response.status_code >= 400:
        _validate(doc, {"$ref": "#/components/schemas/Error"}, response.json())
        return
    kind = response.headers.get("content-type", "")
    if kind.startswith("text/event-stream"):
        assert response.text.rstrip().endswith("data: [DONE]"), response.text[-200:]
    elif kind.startswith("application/json") and response.status_code == 200 and method != "OTHER":
        schema = _response_schema(doc, path, method)
        if schema is not None:
            _validate(doc, schema, response.json())


def _request_schema(doc: dict[str, Any], path: str, method: str) -> dict[str, Any] | None:
    body = doc["paths"][path][method.lower()].get("requestBody")
    return body["content"]["application/json"]["schema"] if body else None


def fuzz(doc: dict[str, Any], base: str, path: str, method: str, *, wrong_methods: bool) -> int:
    """Send EXAMPLES generated requests to one route (with *wrong_methods*, one in ten with a
    method it does not serve); the number sent."""
    schema = _request_schema(doc, path, method)
    statuses: Counter[int] = Counter()
    with httpx.Client(base_url=base, timeout=30) as client:

        # no shrinking: a failure is reported as generated (shrinking one costs a minute)
        @settings(max_examples=EXAMPLES, deadline=None, database=None, phases=[Phase.explicit, Phase.generate],
                  suppress_health_check=list(HealthCheck))
        @given(data=st.data())
        def one(data: st.DataObject) -> None:
            other = "PUT" if method == "POST" else "POST"
            verb = data.draw(st.sampled_from([method] * 9 + [other])) if wrong_methods else method
            body = request_bodies(doc, schema, data) if schema is not None else b""
            if schema is not None and data.draw(st.booleans()):
                body = _with_real_model(body, data)
            params = data.draw(st.dictionaries(st.sampled_from(["x", "stream", "model", "a%00"]), TEXT, max_size=2))
            headers = {"Content-Type": data.draw(st.sampled_from(["application/json", "text/plain", "application/octet-stream"]))}
            response = client.request(verb, path, content=body, params=params, headers=headers)
            statuses[response.status_code] += 1
            _check_answer(doc, path, method if verb == method else "OTHER", response)

        one()
    print(f"{method} {path}: {statuses.total()} requests, by status {dict(sorted(statuses.items()))}")  # the numbers
    return statuses.total()


def _with_real_model(body: bytes, data: st.DataObject) -> bytes:
    """Most generated model names are unknown (a 404 each); this one names the served model."""
    try:
        value = json.loads(body)
    except ValueError:
        return body
    if isinstance(value, dict) and "model" in value:
        value["model"] = MODEL
        if isinstance(value.get("max_tokens"), int):
            value["max_tokens"] = min(value["max_tokens"], 16)
    return json.dumps(value).encode()


def _assert_healthy(base: str, in_flight: int) -> None:
    with httpx.Client(base_url=base, timeout=10) as client:
        assert client.get("/health").status_code == 200
    assert in_flight == 0
    answer = openai.OpenAI(base_url=base + "/v1", api_key="none", max_retries=0).completions.create(
        model=MODEL, prompt="after the fuzz", max_tokens=4)
    assert answer.choices[0].text


def gateway_operations() -> list[Any]:
    # /v1/embeddings included: the simulator serves none, and the engine's plain-text 404
    # must reach the client as the OpenAI error object (the fuzz found it relayed verbatim)
    return list(operations(gateway_document()))


@pytest.mark.parametrize(("path", "method"), gateway_operations())
def test_gateway_route_survives_its_fuzz(servers: Servers, path: str, method: str) -> None:
    sent = fuzz(gateway_document(), servers.gateway, path, method, wrong_methods=True)
    assert sent >= EXAMPLES
    _assert_healthy(servers.gateway, servers.app[GATEWAY].in_flight)


@pytest.mark.parametrize(("path", "method"), operations(sim_document()))
def test_simulator_route_survives_its_fuzz(servers: Servers, path: str, method: str) -> None:
    # vLLM answers a method or path it does not serve as its web framework does, not with
    # the OpenAI error object; the simulator does the same, so only served methods are sent
    sent = fuzz(sim_document(), servers.sim, path, method, wrong_methods=False)
    assert sent >= EXAMPLES
    running = sum(len(getattr(s.engine, "running", [])) for s in servers.fleet.servers)
    _assert_healthy(servers.sim, running)
