"""The cost model seen through HTTP: prefix caching, a full KV cache, queueing.

Latencies are the engine's own (its TTFT histogram), so a busy machine does not blur them.
"""

from __future__ import annotations

import asyncio

import httpx

from kubellm.sim import SimConfig, run_engine

from .conftest import engine_ttft, metric

LONG = "Section {i}: the operator reconciles the service and renders its objects. " * 120


async def test_repeated_prefix_hits_the_cache_and_is_faster(http: httpx.AsyncClient) -> None:
    async with run_engine(SimConfig(profile="qwen2.5-7b-l4")) as server:  # slow prefill: clear gap
        cold, cold_body = await engine_ttft(http, server.url, {"prompt": LONG.format(i=1) + " one", "max_tokens": 2})
        warm, warm_body = await engine_ttft(http, server.url, {"prompt": LONG.format(i=1) + " two", "max_tokens": 2})
        text = (await http.get(server.url + "/metrics")).text
    cold_usage, warm_usage = cold_body["usage"], warm_body["usage"]
    assert cold_usage["prompt_tokens_details"]["cached_tokens"] == 0
    assert warm_usage["prompt_tokens_details"]["cached_tokens"] > 0.9 * warm_usage["prompt_tokens"]
    assert warm < cold / 3
    assert metric(text, "vllm:prefix_cache_hits_total") == warm_usage["prompt_tokens_details"]["cached_tokens"]
    assert metric(text, "vllm:prefix_cache_queries_total") == cold_usage["prompt_tokens"] + warm_usage["prompt_tokens"]


async def test_ttft_grows_with_prompt_length_over_http(http: httpx.AsyncClient) -> None:
    async with run_engine(SimConfig(profile="qwen2.5-7b-l4", enable_prefix_caching=False)) as server:
        short, _ = await engine_ttft(http, server.url, {"prompt": "short prompt", "max_tokens": 2})
        long, _ = await engine_ttft(http, server.url, {"prompt": LONG.format(i=2), "max_tokens": 2})
    assert long > 5 * short


async def test_full_kv_cache_reaches_usage_one_and_queues_or_preempts(http: httpx.AsyncClient) -> None:
    cfg = SimConfig(profile="tiny", num_gpu_blocks=24, time_scale=0.25)
    async with run_engine(cfg) as server:
        async def one(i: int) -> int:
            r = await http.post(server.url + "/v1/completions",
                                json={"prompt": f"request {i} " * 30, "max_tokens": 120})
            return int(r.json()["usage"]["completion_tokens"])

        load = asyncio.gather(*(one(i) for i in range(8)))
        usage, waiting, preempted = 0.0, 0.0, 0.0
        while not load.done():
            text = (await http.get(server.url + "/metrics")).text
            usage = max(usage, metric(text, "vllm:kv_cache_usage_perc"))
            waiting = max(waiting, metric(text, "vllm:num_requests_waiting"))
            preempted = metric(text, "vllm:num_preemptions_total")
            await asyncio.sleep(0.01)
        assert await load == [120] * 8  # everyone finishes despite the pressure
    assert usage == 1.0
    assert waiting > 0 or preempted > 0
