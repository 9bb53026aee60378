"""Invariants of the scheduler over random workloads (hypothesis)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from kubellm.sim.profiles import get_profile
from kubellm.sim.replay import Arrival, simulate
from kubellm.sim.scheduler import Limits

PROFILE = get_profile("tiny")

requests = st.lists(
    st.tuples(st.floats(0, 0.05), st.integers(0, 3), st.integers(1, 200), st.integers(1, 40)),
    min_size=1, max_size=16)


@settings(max_examples=60, deadline=None)
@given(requests, st.integers(1, 6), st.integers(16, 400), st.booleans())
def test_every_request_finishes_within_limits(reqs: list[tuple[float, int, int, int]], max_seqs: int,
                                              budget: int, caching: bool) -> None:
    shared = [list(range(1000 * p, 1000 * p + 64)) for p in range(4)]  # a few common prefixes
    arrivals = [Arrival(at, shared[prefix] + list(range(7, 7 + n)), out) for at, prefix, n, out in reqs]
    need = max(-(-(len(a.prompt_ids) + a.output_tokens) // 16) for a in arrivals)
    run = simulate(PROFILE, Limits(max_seqs, budget, 16), need + 2, arrivals, enable_caching=caching)
    for a, tl in zip(arrivals, run.timelines):
        assert len(tl.token_times) == a.output_tokens
        assert tl.token_times[0] > a.at
        assert tl.token_times == sorted(tl.token_times)
    assert run.max_batch_tokens <= budget
    assert run.max_running <= max_seqs
    assert run.final_kv_usage == 0.0  # every block came back
    assert run.prefix_hits <= run.prefix_queries
    if not caching:
        assert run.prefix_hits == 0
