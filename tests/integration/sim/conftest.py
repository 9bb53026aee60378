"""Fixtures: real simulated engines on loopback free ports, in the test's event loop."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from kubellm.sim import Fleet, SimConfig, run_fleet


@pytest.fixture
async def fleet2() -> AsyncIterator[Fleet]:
    async with run_fleet(SimConfig(model="sim-model"), replicas=2) as urls:
        yield urls


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=30) as client:
        yield client


def metric(text: str, name: str, **labels: str) -> float:
    """Value of one sample of the Prometheus exposition *text*."""
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            if all(f'{k}="{v}"' in line for k, v in labels.items()):
                return float(line.rsplit(" ", 1)[1])
    raise KeyError(f"{name} {labels} not exported")


async def engine_ttft(http: httpx.AsyncClient, url: str, body: dict[str, object]) -> tuple[float, dict[str, Any]]:
    """TTFT the engine recorded for one request (arrival at the engine to first token), and
    the response body: free of the noise a busy machine adds to client-side timings."""
    before = metric((await http.get(url + "/metrics")).text, "vllm:time_to_first_token_seconds_sum")
    r = await http.post(url + "/v1/completions", json=body)
    assert r.status_code == 200, r.text
    after = metric((await http.get(url + "/metrics")).text, "vllm:time_to_first_token_seconds_sum")
    return after - before, r.json()
