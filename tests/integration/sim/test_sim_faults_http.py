"""Injected faults as a client sees them."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from kubellm.sim import FaultConfig, SimConfig, run_engine

BODY = {"prompt": "x", "max_tokens": 10}


def _cfg(**faults: object) -> SimConfig:
    return SimConfig(fixed_ttft_ms=5, fixed_tpot_ms=2, faults=FaultConfig(**faults))  # type: ignore[arg-type]


async def test_error_rate_and_status(http: httpx.AsyncClient) -> None:
    async with run_engine(_cfg(error_rate=0.5, error_status=500, seed=1)) as server:
        codes = [(await http.post(server.url + "/v1/completions", json=BODY)).status_code for _ in range(40)]
    assert set(codes) == {200, 500}
    assert 10 <= codes.count(500) <= 30


async def test_stream_dies_before_done(http: httpx.AsyncClient) -> None:
    async with run_engine(_cfg(die_mid_stream_rate=1.0, die_after_tokens=3)) as server:
        lines: list[str] = []
        with pytest.raises(httpx.HTTPError):
            async with http.stream("POST", server.url + "/v1/completions", json={**BODY, "stream": True}) as r:
                async for line in r.aiter_lines():
                    lines.append(line)
    assert sum(1 for line in lines if line.startswith("data: {")) == 3
    assert "data: [DONE]" not in lines


async def test_hang_never_answers(http: httpx.AsyncClient) -> None:
    async with run_engine(_cfg(hang_rate=1.0)) as server:
        with pytest.raises(httpx.ReadTimeout):
            await http.post(server.url + "/v1/completions", json=BODY, timeout=0.5)


async def test_crash_after_n_requests_stops_listening(http: httpx.AsyncClient) -> None:
    async with run_engine(_cfg(crash_after_requests=2)) as server:
        for _ in range(2):
            assert (await http.post(server.url + "/v1/completions", json=BODY)).status_code == 200
        with pytest.raises(httpx.HTTPError):
            await http.post(server.url + "/v1/completions", json=BODY)
        await asyncio.sleep(0.2)
        assert server.crashed
        with pytest.raises(httpx.ConnectError):
            await http.get(server.url + "/health")


async def test_latency_spike_delays_the_first_token(http: httpx.AsyncClient) -> None:
    async with run_engine(_cfg(spike_rate=1.0, spike_ms=300)) as server:
        loop = asyncio.get_running_loop()
        start = loop.time()
        await http.post(server.url + "/v1/completions", json=BODY)
        assert loop.time() - start >= 0.3
