"""The numbers bench reports are right: measured against a simulator whose latency is known."""

from __future__ import annotations

import statistics

import pytest

from kubellm.bench import driver
from kubellm.bench.client import Target
from kubellm.bench.records import SLO, LoadPoint
from kubellm.bench.stats import summarize
from kubellm.bench.workload import Length, WorkloadConfig, generate

TTFT_MS, TPOT_MS, TOKENS = 150.0, 15.0, 20


def fixed(tokens: int = TOKENS, prompt: int = 32) -> WorkloadConfig:
    return WorkloadConfig(prompt_tokens=Length(low=prompt, high=prompt), output_tokens=Length(low=tokens, high=tokens))


async def test_known_ttft_and_tpot_are_measured_within_tolerance(sim) -> None:  # type: ignore[no-untyped-def]
    async with sim(TTFT_MS, TPOT_MS) as url:
        records = await driver.run(Target(url, "m"), generate(fixed(), 24), LoadPoint(mode="concurrency", value=4))
    summary = summarize(records)
    assert summary.failed == 0
    assert {r.output_tokens for r in records} == {TOKENS}
    assert all(r.prompt_tokens and r.prompt_tokens >= 32 for r in records)  # from the stream's usage
    assert summary.ttft is not None and summary.tpot is not None and summary.itl is not None
    # never faster than the server's known latency (timer slack only), at most 10% slower
    assert min(r.ttft_s or 0 for r in records) >= TTFT_MS / 1000 - 0.002
    assert summary.ttft.p50 == pytest.approx(TTFT_MS / 1000, rel=0.10)
    assert summary.tpot.p50 == pytest.approx(TPOT_MS / 1000, rel=0.10)
    assert summary.itl.p50 == pytest.approx(TPOT_MS / 1000, rel=0.10)
    assert summary.itl.count == 24 * (TOKENS - 1)
    assert summary.e2e is not None
    assert summary.e2e.p50 == pytest.approx((TTFT_MS + (TOKENS - 1) * TPOT_MS) / 1000, rel=0.10)
    assert summary.output_tokens_per_s == pytest.approx(24 * TOKENS / summary.duration_s)


async def test_injected_errors_are_counted_at_the_injected_rate(sim) -> None:  # type: ignore[no-untyped-def]
    n, rate = 200, 0.25
    async with sim(5, 1, error_rate=rate, error_status=503, seed=7) as url:
        records = await driver.run(Target(url, "m"), generate(fixed(tokens=4), n), LoadPoint(mode="concurrency", value=16))
    summary = summarize(records)
    assert set(summary.errors) == {"http_503"}
    failed = summary.errors["http_503"]
    sigma = (n * rate * (1 - rate)) ** 0.5
    assert abs(failed - n * rate) <= 3 * sigma, f"{failed} errors of {n} at an injected rate of {rate}"
    assert summary.error_rate == failed / n and summary.completed == n - failed


async def test_goodput_falls_as_the_slo_tightens(sim) -> None:  # type: ignore[no-untyped-def]
    # 30% of requests get a 300 ms spike before their 50 ms TTFT
    async with sim(50, 5, spike_rate=0.3, spike_ms=300, seed=3) as url:
        records = await driver.run(Target(url, "m"), generate(fixed(tokens=4), 80), LoadPoint(mode="concurrency", value=10))
    spiked = sum(1 for r in records if (r.ttft_s or 0) > 0.3) / len(records)
    goodputs = [summarize(records, SLO(ttft_s=ms / 1000)).goodput for ms in (2000, 200, 20)]
    assert goodputs[0] == 1.0
    assert goodputs[1] == pytest.approx(1 - spiked) and 0.5 < goodputs[1] < 0.9
    assert goodputs[2] == 0.0
    # a TPOT SLO bites too: 1 ms against a 5 ms TPOT (a few streams may arrive bunched up)
    tpot_goodput = summarize(records, SLO(ttft_s=2.0, tpot_s=0.001)).goodput
    assert tpot_goodput is not None and tpot_goodput < 0.1


async def test_open_loop_stays_open_when_the_server_is_slow(sim) -> None:  # type: ignore[no-untyped-def]
    """At 40 req/s against a 1.5 s TTFT, all 30 requests must go out on schedule (in ~0.75 s)
    while none has finished: a closed loop in disguise would wait for replies."""
    async with sim(1500, 5) as url:
        records = await driver.run(Target(url, "m"), generate(fixed(tokens=2), 30), LoadPoint(mode="rate", value=40), seed=1)
    summary = summarize(records)
    assert summary.failed == 0 and summary.send_lag is not None
    # a closed loop would lag by the 1.5 s TTFT; a loaded machine stalls one send by up to ~0.3 s
    assert summary.send_lag.p50 < 0.01 and summary.send_lag.max < 0.75
    last_send = max(r.start_s for r in records)
    first_end = min(r.end_s or 0 for r in records)
    assert last_send < first_end, "every request was sent before the first reply ended"
    assert statistics.fmean(r.ttft_s or 0 for r in records) == pytest.approx(1.5, rel=0.05)


async def test_closed_loop_never_exceeds_its_concurrency(sim) -> None:  # type: ignore[no-untyped-def]
    async with sim(200, 5) as url:
        records = await driver.run(Target(url, "m"), generate(fixed(tokens=2), 9), LoadPoint(mode="concurrency", value=3))
    events = sorted([(r.start_s, 1) for r in records] + [(r.end_s or 0, -1) for r in records], key=lambda e: (e[0], e[1]))
    level, peak = 0, 0
    for _, step in events:
        level += step
        peak = max(peak, level)
    assert peak == 3
    duration = summarize(records).duration_s
    assert 3 * 0.2 <= duration < 3 * 0.2 * 1.5  # three waves, one after another
