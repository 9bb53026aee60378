"""The latency learner's requests-ahead totals (kept as running totals, not recounted per
decision) agree with the definition: this gateway's requests at the endpoint whose first token
it has not seen (streamed) or that are still before their predicted first token
(``now - sent < predicted``, not streamed), counted and their uncached tokens summed."""

from __future__ import annotations

import math
import random

import pytest

from kubellm.gateway.clock import FakeClock
from kubellm.gateway.scheduling.learner import LatencyState
from kubellm.gateway.scheduling.request import RoutingRequest

URLS = ("http://a", "http://b")


def _by_definition(state: LatencyState, url: str, now: float, first_seen: set[int] = frozenset()) -> tuple[int, float]:
    live = [t for key, t in state._by_endpoint.get(url, {}).items()
            if (key not in first_seen if t.streamed else now - t.sent < t.predicted)]
    return len(live), sum(t.features.uncached_tokens for t in live)


def _route(state: LatencyState, make_ep, rng: random.Random, stream: bool = False) -> RoutingRequest:
    req = RoutingRequest(model="m", prompt_chars=rng.choice((40, 400, 4000, 40000)), stream=stream)
    eps = [make_ep(u, scraped=True, running=rng.random() * 8, waiting=rng.random() * 4) for u in URLS]
    state.predict(req, eps, {}, 10)
    state.start(req, rng.choice(URLS))
    return req


@pytest.mark.parametrize("seed", range(5))
def test_running_totals_match_the_definition_through_starts_finishes_and_time(make_ep, seed):
    rng = random.Random(seed)
    clock = FakeClock()
    state = LatencyState(clock.now)
    live: list[RoutingRequest] = []
    first_seen: set[int] = set()
    for _ in range(600):
        action = rng.random()
        if action < 0.45:
            live.append(_route(state, make_ep, rng, stream=rng.random() < 0.5))
        elif action < 0.55 and live:  # a streamed request's first token reached the gateway
            req = rng.choice(live)
            first_seen.add(req.serial)
            state.first_token(req)
        elif action < 0.8 and live:
            req = live.pop(rng.randrange(len(live)))
            state.finish(req, ttft_s=rng.random() * 0.5, decode_s=1.0, prompt_tokens=100, cached_tokens=rng.choice((None, 20)),
                         completion_tokens=10)
        else:
            clock.advance(rng.random() * 0.3)
        for url in URLS:
            count, tokens = state._ahead(url, clock.now())
            want_count, want_tokens = _by_definition(state, url, clock.now(), first_seen)
            assert count == want_count
            assert tokens == pytest.approx(want_tokens, rel=1e-9, abs=1e-6)


def test_a_nan_prediction_is_never_ahead_and_an_infinite_one_until_it_ends(make_ep):
    clock = FakeClock()
    state = LatencyState(clock.now)
    rng = random.Random(0)
    nan_req, inf_req = _route(state, make_ep, rng), _route(state, make_ep, rng)
    for req, value in ((nan_req, math.nan), (inf_req, math.inf)):  # as a broken fit could predict
        state.finish(req, ttft_s=None, decode_s=math.nan, prompt_tokens=0, cached_tokens=None, completion_tokens=0)
        state.predict(req, [make_ep("http://a", scraped=True)], {}, 10)
        object.__setattr__(state._last[1]["http://a"], "ttft_s", value)  # Prediction is frozen
        state.start(req, "http://a")
    clock.advance(1e6)
    assert state._ahead("http://a", clock.now()) == (1, state._tickets[inf_req.serial].features.uncached_tokens)
    state.finish(inf_req, ttft_s=None, decode_s=math.nan, prompt_tokens=0, cached_tokens=None, completion_tokens=0)
    assert state._ahead("http://a", clock.now()) == (0, 0.0)


def test_ended_requests_do_not_pile_up_in_the_deadline_heap(make_ep):
    """Requests that end long before their predicted first token (an infinite prediction here)
    leave heap entries behind; the heap is rebuilt so it stays near the live count."""
    clock = FakeClock()
    state = LatencyState(clock.now)
    for _ in range(2000):
        req = RoutingRequest(model="m", prompt_chars=100)
        state.predict(req, [make_ep("http://a", scraped=True)], {}, 10)
        object.__setattr__(state._last[1]["http://a"], "ttft_s", math.inf)
        state.start(req, "http://a")
        state.finish(req, ttft_s=None, decode_s=math.nan, prompt_tokens=0, cached_tokens=None, completion_tokens=0)
    assert len(state._ahead_of["http://a"].deadlines) <= 64 + 1
