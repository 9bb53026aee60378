"""bench and check through the real kubellm gateway in front of two real simulator engines."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from kubellm.bench import driver
from kubellm.bench.check import CheckPlan, run_check
from kubellm.bench.client import Target
from kubellm.bench.records import LoadPoint
from kubellm.bench.stats import summarize
from kubellm.bench.workload import Length, WorkloadConfig, generate
from kubellm.gateway.app import build_gateway
from kubellm.gateway.config import parse_config
from kubellm.sim import SimConfig, run_fleet

GATEWAY_SERIES = ("kubellm_requests", "kubellm_time_to_first_token_seconds", "kubellm_requests_in_flight")


@contextlib.asynccontextmanager
async def gateway_over_sims(ttft_ms: float, tpot_ms: float) -> AsyncIterator[str]:
    async with run_fleet(SimConfig(model="m", fixed_ttft_ms=ttft_ms, fixed_tpot_ms=tpot_ms), replicas=2) as urls:
        app = build_gateway(parse_config({"models": [{"name": "m", "endpoints": list(urls)}]}))
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        try:
            yield f"http://127.0.0.1:{runner.addresses[0][1]}"
        finally:
            await runner.cleanup()


async def test_known_latency_is_measured_through_the_gateway() -> None:
    workload = WorkloadConfig(prompt_tokens=Length(low=32, high=32), output_tokens=Length(low=16, high=16))
    async with gateway_over_sims(120, 12) as url:
        records = await driver.run(Target(url, "m"), generate(workload, 24), LoadPoint(mode="concurrency", value=4))
    summary = summarize(records)
    assert summary.failed == 0 and {r.output_tokens for r in records} == {16}
    assert summary.ttft is not None and summary.tpot is not None
    assert min(r.ttft_s or 0 for r in records) >= 0.118
    assert summary.ttft.p50 == pytest.approx(0.120, rel=0.15)  # one more hop than the direct test
    assert summary.tpot.p50 == pytest.approx(0.012, rel=0.15)


async def test_check_passes_through_the_gateway_with_its_own_series() -> None:
    async with gateway_over_sims(20, 2) as url:
        report = await run_check(CheckPlan(url, "m", series=GATEWAY_SERIES, requests=12))
    assert report.passed, [v for v in report.verdicts if not v.passed]
    async with gateway_over_sims(20, 2) as url:
        vllm_series = await run_check(CheckPlan(url, "m", requests=4))
    failed = [v.name for v in vllm_series.failures]
    assert failed == ["GET /metrics"], "the gateway does not re-export the engines' vllm: series"
