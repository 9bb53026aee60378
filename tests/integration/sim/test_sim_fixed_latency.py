"""Fixed-latency mode: the TTFT and TPOT a test sets are what a client measures."""

from __future__ import annotations

import asyncio
import statistics
import time

import httpx

from kubellm.sim import SimConfig, run_engine

from .conftest import metric


async def _timed_stream(http: httpx.AsyncClient, url: str, n: int) -> tuple[float, float]:
    start = time.perf_counter()
    first = last = 0.0
    async with http.stream("POST", url + "/v1/completions",
                           json={"prompt": "x", "max_tokens": n, "stream": True}) as r:
        async for line in r.aiter_lines():
            if line.startswith("data: {") and '"text":"' in line and '"finish_reason":null' in line:
                last = time.perf_counter() - start
                first = first or last
    return first, (last - first) / (n - 1)


async def test_ttft_and_tpot_hold_under_concurrency(http: httpx.AsyncClient) -> None:
    """No first token comes early; typical latencies are the configured ones.

    Latencies are long (500 ms / 50 ms) so that the delays a loaded CI machine adds to a
    client's wall-clock readings stay small beside them.
    """
    async with run_engine(SimConfig(fixed_ttft_ms=500, fixed_tpot_ms=50)) as server:
        results = await asyncio.gather(*(_timed_stream(http, server.url, 8) for _ in range(10)))
    ttfts, tpots = sorted(r[0] for r in results), sorted(r[1] for r in results)
    assert ttfts[0] >= 0.495
    assert statistics.median(ttfts) <= 0.75
    assert 0.04 <= statistics.median(tpots) <= 0.075


async def test_time_scale_runs_model_time_faster_and_metrics_stay_in_model_seconds(http: httpx.AsyncClient) -> None:
    async with run_engine(SimConfig(fixed_ttft_ms=2000, fixed_tpot_ms=100, time_scale=10)) as server:
        start = time.perf_counter()
        r = await http.post(server.url + "/v1/completions", json={"prompt": "x", "max_tokens": 11})
        wall = time.perf_counter() - start
        text = (await http.get(server.url + "/metrics")).text
    assert r.status_code == 200
    assert 0.3 <= wall < 2.0  # 3 model seconds in about 0.3 wall seconds
    assert metric(text, "vllm:time_to_first_token_seconds_sum") == 2.0
    assert metric(text, "vllm:e2e_request_latency_seconds_sum") == 3.0
