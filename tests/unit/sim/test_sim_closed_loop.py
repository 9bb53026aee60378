"""The closed-loop replay: C clients, each sending its next request when its last one ends."""

from __future__ import annotations

import pytest

from kubellm.sim.errors import SimConfigError
from kubellm.sim.profiles import Profile
from kubellm.sim.replay import Arrival, simulate, simulate_closed_loop
from kubellm.sim.scheduler import Limits

from .conftest import random_prompt

DELAY = 0.01


def _requests(n: int, prompt: int = 64, out: int = 8) -> list[Arrival]:
    return [Arrival(0.0, random_prompt(prompt, seed), out) for seed in range(n)]


def test_one_client_sends_each_request_when_the_last_one_ends(h100: Profile, h100_limits: Limits) -> None:
    run = simulate_closed_loop(h100, h100_limits, h100.num_gpu_blocks, _requests(5), 1, DELAY)
    assert run.max_running == 1
    assert run.timelines[0].arrival == pytest.approx(DELAY)
    for before, after in zip(run.timelines, run.timelines[1:]):
        assert after.arrival == pytest.approx(before.token_times[-1] + DELAY)


def test_never_more_requests_in_flight_than_clients(h100: Profile, h100_limits: Limits) -> None:
    run = simulate_closed_loop(h100, h100_limits, h100.num_gpu_blocks, _requests(40), 4, DELAY)
    assert run.max_running == 4
    assert all(len(tl.token_times) == 8 for tl in run.timelines)
    sends = sorted(tl.arrival for tl in run.timelines)
    assert sends[:4] == pytest.approx([DELAY] * 4) and sends[4] > DELAY  # the fifth waits for a client


def test_as_many_clients_as_requests_is_everything_at_once(h100: Profile, h100_limits: Limits) -> None:
    requests = _requests(6)
    closed = simulate_closed_loop(h100, h100_limits, h100.num_gpu_blocks, requests, 6, DELAY)
    at_once = simulate(h100, h100_limits, h100.num_gpu_blocks, [Arrival(DELAY, a.prompt_ids, 8) for a in requests])
    assert [tl.token_times for tl in closed.timelines] == [tl.token_times for tl in at_once.timelines]


def test_more_clients_more_throughput_slower_tokens(h100: Profile, h100_limits: Limits) -> None:
    def run(clients: int) -> tuple[float, float]:
        r = simulate_closed_loop(h100, h100_limits, h100.num_gpu_blocks, _requests(64, 512, 32), clients, DELAY)
        return 64 * 32 / r.end, max(tl.tpot for tl in r.timelines)

    (thr1, tpot1), (thr16, tpot16) = run(1), run(16)
    assert thr16 > 5 * thr1
    assert tpot16 > tpot1


def test_no_clients_is_a_config_error(h100: Profile, h100_limits: Limits) -> None:
    with pytest.raises(SimConfigError, match="clients must be at least 1"):
        simulate_closed_loop(h100, h100_limits, h100.num_gpu_blocks, _requests(2), 0)


def test_a_negative_client_cost_is_a_config_error(h100: Profile, h100_limits: Limits) -> None:
    with pytest.raises(SimConfigError, match="client_cost_s must be at least 0"):
        simulate_closed_loop(h100, h100_limits, h100.num_gpu_blocks, _requests(2), 2, client_cost_s=-0.001)


def test_one_client_process_gets_requests_taken_up_together_out_one_at_a_time(
        h100: Profile, h100_limits: Limits) -> None:
    cost = 0.002
    run = simulate_closed_loop(h100, h100_limits, h100.num_gpu_blocks, _requests(12), 4, DELAY, client_cost_s=cost)
    first = run.timelines[:4]
    assert [tl.sent for tl in first] == [0.0] * 4  # every clock starts at once
    assert [tl.arrival for tl in first] == pytest.approx([DELAY + cost * (n + 1) for n in range(4)])
    for tl in run.timelines[4:]:  # each later request is taken up when a request ends, then leaves the client
        assert any(tl.sent == pytest.approx(other.token_times[-1]) for other in run.timelines)
        assert tl.arrival >= tl.sent + cost + DELAY - 1e-12


def test_without_a_client_cost_a_request_is_sent_as_it_is_taken_up(h100: Profile, h100_limits: Limits) -> None:
    run = simulate_closed_loop(h100, h100_limits, h100.num_gpu_blocks, _requests(8), 2, DELAY)
    assert all(tl.arrival == pytest.approx(tl.sent + DELAY) for tl in run.timelines)
