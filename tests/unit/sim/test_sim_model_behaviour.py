"""Behaviour of the cost model in virtual time: what a router or autoscaler relies on.

These check directions and relations (longer prompt -> later first token, shared prefix ->
cache hits and a faster first token, bigger batch -> slower tokens, full cache -> waiting
and preemption, more load -> saturated throughput), not the profile's constants.
"""

from __future__ import annotations

import pytest

from kubellm.sim.profiles import Profile
from kubellm.sim.replay import Arrival, simulate
from kubellm.sim.scheduler import Limits

from .conftest import random_prompt


def _one(profile: Profile, limits: Limits, prompt: list[int], out: int = 8) -> float:
    run = simulate(profile, limits, profile.num_gpu_blocks, [Arrival(0.0, prompt, out)])
    return run.timelines[0].ttft


def test_ttft_grows_with_prompt_length(h100: Profile, h100_limits: Limits) -> None:
    ttfts = [_one(h100, h100_limits, random_prompt(n, n)) for n in (64, 512, 2048, 8000)]
    assert ttfts == sorted(ttfts)
    assert ttfts[-1] > 5 * ttfts[0]


def test_repeated_prefix_is_faster_and_counted_as_hits(h100: Profile, h100_limits: Limits) -> None:
    shared = random_prompt(4000, 1)
    first = Arrival(0.0, shared + random_prompt(50, 2), 4)
    second = Arrival(5.0, shared + random_prompt(50, 3), 4)  # after the first finished
    cold = Arrival(5.0, random_prompt(4050, 4), 4)
    warm_run = simulate(h100, h100_limits, h100.num_gpu_blocks, [first, second])
    cold_run = simulate(h100, h100_limits, h100.num_gpu_blocks, [first, cold])
    warm, cold_tl = warm_run.timelines[1], cold_run.timelines[1]
    assert warm.num_cached == 4000 // 16 * 16
    assert cold_tl.num_cached == 0
    assert warm.ttft < cold_tl.ttft / 4
    assert warm_run.prefix_hits == warm.num_cached
    assert cold_run.prefix_hits == 0


def test_prefix_cache_off_gives_no_hits(h100: Profile, h100_limits: Limits) -> None:
    shared = random_prompt(1000, 5)
    run = simulate(h100, h100_limits, h100.num_gpu_blocks,
                   [Arrival(0.0, shared, 2), Arrival(2.0, shared, 2)], enable_caching=False)
    assert run.prefix_hits == 0 and run.timelines[1].num_cached == 0


@pytest.mark.parametrize("batch_sizes", [(1, 8, 32, 128)])
def test_tpot_grows_with_batch_size(h100: Profile, h100_limits: Limits, batch_sizes: tuple[int, ...]) -> None:
    tpots = []
    for b in batch_sizes:
        arrivals = [Arrival(0.0, random_prompt(256, 100 + i), 64) for i in range(b)]
        run = simulate(h100, h100_limits, h100.num_gpu_blocks, arrivals)
        tpots.append(sum(t.tpot for t in run.timelines) / b)
    assert tpots == sorted(tpots)
    assert tpots[-1] > 1.5 * tpots[0]


def test_full_kv_cache_makes_requests_wait_or_be_preempted(h100: Profile) -> None:
    limits = Limits(64, 2048, 16)
    blocks = 64  # 1024 tokens of KV for 16 requests that each need ~ 300
    arrivals = [Arrival(0.0, random_prompt(100, i), 200) for i in range(16)]
    run = simulate(h100, limits, blocks, arrivals)
    assert run.max_kv_usage == pytest.approx(1.0)
    assert run.preemptions > 0 or run.max_waiting > 0
    assert all(len(t.token_times) == 200 for t in run.timelines)  # everyone still finishes


def test_preempted_requests_are_recomputed_not_lost(h100: Profile) -> None:
    limits = Limits(64, 4096, 16)
    arrivals = [Arrival(0.0, random_prompt(64, i), 300) for i in range(8)]
    run = simulate(h100, limits, 100, arrivals)
    assert run.preemptions > 0
    assert any(t.preempted for t in run.timelines)
    assert all(len(t.token_times) == 300 for t in run.timelines)


def test_throughput_saturates_as_load_rises(h100: Profile, h100_limits: Limits) -> None:
    """Output tokens/s rise with the request rate, then flatten while queueing explodes."""
    throughputs, queue_ttft = [], []
    for rate in (2.0, 20.0, 200.0, 2000.0):
        arrivals = [Arrival(i / rate, random_prompt(512, i), 128) for i in range(300)]
        run = simulate(h100, h100_limits, h100.num_gpu_blocks, arrivals)
        throughputs.append(300 * 128 / run.end)
        queue_ttft.append(sorted(t.ttft for t in run.timelines)[len(arrivals) // 2])
    assert throughputs[1] > 5 * throughputs[0]  # light load: throughput follows the rate
    assert throughputs[3] < 1.3 * throughputs[2]  # heavy load: it flattens
    assert queue_ttft[3] > 10 * queue_ttft[0]  # ...and the excess becomes queueing


def test_step_respects_token_budget_and_max_num_seqs(h100: Profile) -> None:
    limits = Limits(max_num_seqs=4, max_num_batched_tokens=512, block_size=16)
    arrivals = [Arrival(0.0, random_prompt(3000, i), 4) for i in range(10)]
    run = simulate(h100, limits, h100.num_gpu_blocks, arrivals)
    assert run.max_batch_tokens <= 512  # chunked prefill keeps every step in budget
    assert run.max_running <= 4


def test_waiting_queue_is_fifo(h100: Profile) -> None:
    limits = Limits(max_num_seqs=1, max_num_batched_tokens=8192, block_size=16)
    arrivals = [Arrival(0.001 * i, random_prompt(100, i), 16) for i in range(6)]
    run = simulate(h100, limits, h100.num_gpu_blocks, arrivals)
    firsts = [t.token_times[0] for t in run.timelines]
    assert firsts == sorted(firsts)
