"""The gateway in front of real simulator engines, driven by the real openai client."""

from __future__ import annotations

import asyncio
from collections import Counter

import aiohttp
import openai
import pytest
from multidict import CIMultiDict

from kubellm.sim import FaultConfig, SimConfig, run_fleet

from .conftest import model

FAST = dict(fixed_ttft_ms=5, fixed_tpot_ms=1)
MSG = [{"role": "user", "content": "Say something about routers."}]


async def test_chat_stream_and_plain_with_usage(start_gateway):
    async with run_fleet(SimConfig(model="m", **FAST), replicas=2) as urls:
        gw = await start_gateway({"models": [model("m", urls, aliases=["alias-m"])]})
        c = gw.client()
        r = await c.chat.completions.create(model="alias-m", messages=MSG, max_tokens=7)
        assert r.usage.completion_tokens == 7 and r.choices[0].message.content
        chunks = [ch async for ch in await c.chat.completions.create(
            model="m", messages=MSG, max_tokens=6, stream=True)]
        # usage was injected for the gateway's accounting, and not shown to a client that did not ask
        assert all(ch.usage is None for ch in chunks) and all(ch.choices for ch in chunks)
        assert "".join(ch.choices[0].delta.content or "" for ch in chunks)
        asked = [ch async for ch in await c.chat.completions.create(
            model="m", messages=MSG, max_tokens=6, stream=True, stream_options={"include_usage": True})]
        assert asked[-1].usage.completion_tokens == 6
        async with aiohttp.ClientSession() as s, s.get(gw.url + "/metrics") as resp:
            metrics = await resp.text()
        assert 'kubellm_completion_tokens_total{model="m",tenant="anonymous"} 19.0' in metrics
        assert "vllm:" not in metrics


async def test_completions_and_models_listing(start_gateway):
    async with run_fleet(SimConfig(model="base", lora_modules=("sql-lora",), **FAST), replicas=1) as urls:
        gw = await start_gateway({"models": [model("base", urls, loraAdapters=["sql-lora"])]})
        c = gw.client()
        r = await c.completions.create(model="sql-lora", prompt="SELECT", max_tokens=3)
        assert r.model == "sql-lora" and r.usage.completion_tokens == 3
        ids = {m.id for m in (await c.models.list()).data}
        assert ids == {"base", "sql-lora"}


async def test_errors_are_openai_json(start_gateway):
    async with run_fleet(SimConfig(model="m", **FAST), replicas=1) as urls:
        gw = await start_gateway({"models": [model("m", urls)]})
        c = gw.client()
        with pytest.raises(openai.NotFoundError) as nf:
            await c.chat.completions.create(model="nope", messages=MSG)
        assert nf.value.body["code"] == "model_not_found"
        async with aiohttp.ClientSession() as s:
            for body, status in ((b"{not json", 400), (b"[]", 400), (b'{"model": "m"}', 400),
                                 (b'{"model": "m", "messages": [], "stream": "yes"}', 400)):
                async with s.post(gw.url + "/v1/chat/completions", data=body) as resp:
                    assert resp.status == status
                    assert (await resp.json())["error"]["type"] == "invalid_request_error"
            async with s.get(gw.url + "/v1/nothing") as resp:
                assert resp.status == 404 and "error" in await resp.json()


async def test_canary_split_within_tolerance(start_gateway):
    async with run_fleet(SimConfig(model="v1", **FAST), replicas=1) as v1, \
            run_fleet(SimConfig(model="v2", **FAST), replicas=1) as v2:
        gw = await start_gateway({"models": [model("v1", v1, aliases=["chat"], canary=[{"model": "v2", "weight": 20}]),
                                             model("v2", v2)]})
        c = gw.client()
        seen = Counter()
        for _ in range(10):
            rs = await asyncio.gather(*(c.completions.create(model="chat", prompt="x", max_tokens=1)
                                        for _ in range(40)))
            seen.update(r.model for r in rs)
        # smooth weighted round-robin: 20 % of 400 within one request, not a random draw's spread
        assert 79 <= seen["v2"] <= 81 and seen["v1"] + seen["v2"] == 400


async def test_retry_on_dead_endpoint_loses_nothing(start_gateway):
    async with run_fleet(SimConfig(model="m", **FAST), replicas=3) as urls:
        gw = await start_gateway({"models": [model("m", urls)], "resilience": {"breakerFailures": 1}})
        await urls.servers[0].crash()
        c = gw.client()
        rs = await asyncio.gather(*(c.completions.create(model="m", prompt=f"p{i}", max_tokens=2) for i in range(60)))
        assert all(r.usage.completion_tokens == 2 for r in rs)
        dead = gw.gateway.pools["m"].endpoints[0]
        assert dead.url == urls[0] and not dead.routable()


async def test_stream_cut_by_dead_engine_ends_with_error_event(start_gateway):
    faults = FaultConfig(die_mid_stream_rate=1.0, die_after_tokens=3)
    async with run_fleet(SimConfig(model="m", faults=faults, **FAST), replicas=1) as urls:
        gw = await start_gateway({"models": [model("m", urls)]})
        c = gw.client()
        got: list[str] = []
        with pytest.raises(openai.APIError, match="closed the stream"):
            async with asyncio.timeout(10):
                async for ch in await c.chat.completions.create(model="m", messages=MSG, max_tokens=50, stream=True):
                    got.append(ch.choices[0].delta.content or "")
        assert len(got) >= 1


async def test_overload_gives_429_with_retry_after_and_no_5xx(start_gateway):
    async with run_fleet(SimConfig(model="m", fixed_ttft_ms=200, fixed_tpot_ms=5), replicas=2) as urls:
        gw = await start_gateway({"models": [model("m", urls, maxOutstandingPerEndpoint=2, maxQueue=4)]})

        async def one(s: aiohttp.ClientSession) -> tuple[int, str | None]:
            body = {"model": "m", "prompt": "x", "max_tokens": 2}
            async with s.post(gw.url + "/v1/completions", json=body) as resp:
                await resp.read()
                return resp.status, resp.headers.get("Retry-After")

        async with aiohttp.ClientSession() as s:
            results = await asyncio.gather(*(one(s) for _ in range(40)))
        statuses = Counter(st for st, _ in results)
        assert set(statuses) <= {200, 429}
        assert statuses[200] >= 8 and statuses[429] >= 20
        assert all(ra and int(ra) >= 1 for st, ra in results if st == 429)


async def test_client_disconnect_cancels_upstream(start_gateway):
    async with run_fleet(SimConfig(model="m", fixed_ttft_ms=5, fixed_tpot_ms=20), replicas=1) as urls:
        gw = await start_gateway({"models": [model("m", urls)]})
        stats = urls.servers[0].engine.stats
        async with aiohttp.ClientSession() as s:
            body = {"model": "m", "prompt": "x", "max_tokens": 2000, "stream": True}
            async with s.post(gw.url + "/v1/completions", json=body) as resp:
                await resp.content.readany()
                assert stats.num_running == 1
        for _ in range(100):  # the engine sees the disconnect and aborts
            if stats.num_running == 0:
                break
            await asyncio.sleep(0.02)
        assert stats.num_running == 0
        assert stats.success["abort"] == 1
        assert gw.gateway.pools["m"].endpoints[0].outstanding == 0


async def test_traceparent_and_request_id_reach_the_engine(start_gateway, serve_engine):
    seen: list[CIMultiDict[str]] = []

    from aiohttp import web

    async def capture(request: web.Request) -> web.Response:
        """A loopback engine stand-in whose only job is to show the headers it was sent."""
        seen.append(request.headers.copy())
        return web.json_response({"choices": [], "usage": {"prompt_tokens": 1, "completion_tokens": 1}})

    app = web.Application()
    app.router.add_post("/v1/completions", capture)
    url = await serve_engine(app)
    gw = await start_gateway({"models": [model("m", [url])]})
    tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    async with aiohttp.ClientSession() as s:
        async with s.post(gw.url + "/v1/completions", json={"model": "m", "prompt": "x"},
                          headers={"traceparent": tp, "x-request-id": "r-1",
                                   "Authorization": "Bearer secret-key"}) as resp:
            assert resp.status == 200
    assert seen[0]["traceparent"] == tp and seen[0]["x-request-id"] == "r-1"
    assert "Authorization" not in seen[0]  # the client's gateway key never reaches engines


@pytest.mark.parametrize("stream", [False, True])
async def test_engine_killed_mid_run_loses_no_unstarted_request(start_gateway, stream):
    async with run_fleet(SimConfig(model="m", fixed_ttft_ms=150, fixed_tpot_ms=1), replicas=3) as urls:
        gw = await start_gateway({"models": [model("m", urls)]})
        c = gw.client()

        async def call(i: int):
            if not stream:
                return await c.completions.create(model="m", prompt=f"p{i}", max_tokens=2)
            chunks = [ch async for ch in await c.completions.create(
                model="m", prompt=f"p{i}", max_tokens=2, stream=True, stream_options={"include_usage": True})]
            return chunks[-1]

        calls = [asyncio.ensure_future(call(i)) for i in range(45)]
        pool = gw.gateway.pools["m"]
        for _ in range(200):  # wait until requests are in flight on every engine (TTFT 150 ms: none answered)
            if all(e.outstanding > 0 for e in pool.endpoints):
                break
            await asyncio.sleep(0.005)
        on_victim = pool.endpoints[0].outstanding
        await urls.servers[0].crash()
        results = await asyncio.gather(*calls, return_exceptions=True)
        assert on_victim > 0
        assert [r for r in results if isinstance(r, BaseException)] == []
        assert all(r.usage.completion_tokens == 2 for r in results)
        async with aiohttp.ClientSession() as s, s.get(gw.url + "/metrics") as resp:
            assert 'kubellm_upstream_retries_total{model="m"}' in await resp.text()


async def test_half_open_trial_abandoned_by_its_client_lets_the_next_one_through(start_gateway, serve_engine):
    """A half-open breaker lets one trial through; if that trial's client goes away before the
    engine answers, the breaker must not wait forever for its verdict (endpoint lost for good).
    The engine is a real aiohttp server on loopback: it fails once, hangs once, then answers."""
    from aiohttp import web

    modes = ["fail", "hang"]
    release = asyncio.Event()

    async def completions(request: web.Request) -> web.Response:
        await request.read()
        mode = modes.pop(0) if modes else "ok"
        if mode == "fail":
            return web.json_response({"error": {"message": "boom"}}, status=500)
        if mode == "hang":
            await release.wait()
        return web.json_response({"id": "x", "object": "text_completion", "model": "m", "created": 0,
                                  "choices": [{"index": 0, "text": "ok", "finish_reason": "stop"}],
                                  "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}})

    engine = web.Application()
    engine.router.add_post("/v1/completions", completions)
    url = await serve_engine(engine)
    try:
        gw = await start_gateway({"models": [model("m", [url])],
                                  "resilience": {"breakerFailures": 1, "breakerOpenS": 0.2, "maxAttempts": 1}})
        body = {"model": "m", "prompt": "x", "max_tokens": 1}
        async with aiohttp.ClientSession() as s:
            async with s.post(gw.url + "/v1/completions", json=body) as resp:
                assert resp.status == 500  # the breaker opens
            await asyncio.sleep(0.3)  # half-open: one trial may go
            with pytest.raises(asyncio.TimeoutError):
                async with s.post(gw.url + "/v1/completions", json=body,
                                  timeout=aiohttp.ClientTimeout(total=0.3)) as resp:
                    await resp.read()
            await asyncio.sleep(0.1)  # the gateway sees the disconnect and cancels the trial
            async with s.post(gw.url + "/v1/completions", json=body) as resp:
                assert resp.status == 200, await resp.text()
        assert gw.gateway.pools["m"].endpoints[0].breaker.state == "closed"
    finally:
        release.set()


@pytest.mark.parametrize("stream", [False, True])
async def test_engine_timeouts_fire_for_each_request_and_free_its_slot(start_gateway, serve_engine, stream):
    """The total (plain) and first-byte (streamed) timeouts run through gateway/deadlines.py's
    shared timer: requests sent at staggered times to a real loopback engine that never answers
    each get 504 about one timeout after their own start, and their slots come back."""
    from aiohttp import web

    release = asyncio.Event()

    async def hang(request: web.Request) -> web.Response:
        await request.read()
        await release.wait()
        return web.json_response({})

    engine = web.Application()
    engine.router.add_post("/v1/completions", hang)
    url = await serve_engine(engine)
    limit = 0.4
    try:
        gw = await start_gateway({"models": [model("m", [url])],
                                  "resilience": {"maxAttempts": 1, "breakerFailures": 10},
                                  "timeouts": {"firstByteS": limit, "totalS": limit}})
        body = {"model": "m", "prompt": "x", "max_tokens": 1, "stream": stream}
        loop = asyncio.get_running_loop()

        async def one(delay: float) -> tuple[int, float]:
            await asyncio.sleep(delay)
            t0 = loop.time()
            async with aiohttp.ClientSession() as s, s.post(gw.url + "/v1/completions", json=body) as resp:
                await resp.read()
                return resp.status, loop.time() - t0

        results = await asyncio.gather(*(one(d) for d in (0.0, 0.1, 0.25)))
        for status, took in results:
            assert status == 504
            assert limit - 0.05 <= took <= limit + 0.3, results
        assert gw.gateway.pools["m"].endpoints[0].outstanding == 0
    finally:
        release.set()


@pytest.mark.parametrize("status", [299, 499, 520])
async def test_a_status_without_a_standard_reason_is_relayed(start_gateway, serve_engine, status):
    """An engine (or a proxy beside it: nginx's 499, a CDN's 52x) answering a status outside
    the standard list gets it relayed, not a gateway 500: the early answer looked its reason
    phrase up in ``HTTPStatus``, which raises for such codes (aiohttp's reason is empty)."""
    from aiohttp import web

    async def odd(request: web.Request) -> web.Response:
        """A loopback engine stand-in answering one status the standard list does not name."""
        return web.json_response({"error": {"message": "odd"}, "usage": {"prompt_tokens": 1}}, status=status)

    app = web.Application()
    app.router.add_post("/v1/completions", odd)
    url = await serve_engine(app)
    gw = await start_gateway({"models": [model("m", [url])], "resilience": {"maxAttempts": 1}})
    async with aiohttp.ClientSession() as s:
        async with s.post(gw.url + "/v1/completions", json={"model": "m", "prompt": "x"}) as resp:
            assert resp.status == status and resp.reason == ""
            assert "error" in await resp.json(content_type=None) or status < 400
    counted = [(s.labels["endpoint"], s.value) for f in gw.gateway.metrics.registry.collect() for s in f.samples
               if s.name == "kubellm_requests_total" and s.labels["status"] == str(status)]
    assert counted == [(url, 1.0)]
