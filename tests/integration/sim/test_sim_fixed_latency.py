"""Fixed-latency mode: the TTFT and TPOT a test sets are what a client measures."""

from __future__ import annotations

import asyncio
import statistics
import time

import httpx

from kubellm.sim import SimConfig, run_engine


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
    """No token comes early; typical latencies are the configured ones (a loaded CI box only adds)."""
    async with run_engine(SimConfig(fixed_ttft_ms=120, fixed_tpot_ms=15)) as server:
        results = await asyncio.gather(*(_timed_stream(http, server.url, 20) for _ in range(10)))
    ttfts, tpots = sorted(r[0] for r in results), sorted(r[1] for r in results)
    assert ttfts[0] >= 0.115 and tpots[0] >= 0.0135
    assert statistics.median(ttfts) <= 0.2
    assert statistics.median(tpots) <= 0.025
