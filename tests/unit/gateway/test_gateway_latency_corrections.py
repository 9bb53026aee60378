"""The latency-predicting router's corrections (issue 18, third pass), table-driven: engine
gauges corrected for what this gateway sent since the scrape, near-equal predictions tied
(then fewer requests wins), one fit per pool, and the approximate prefix index's horizon learned from the engines'
reported cached tokens."""

from __future__ import annotations

import math
import random
from collections import Counter

import pytest

from kubellm.gateway.config import PluginConfig, RoutingProfile
from kubellm.gateway.datalayer import apply_metrics, parse_engine_metrics
from kubellm.gateway.scheduling import scorers
from kubellm.gateway.scheduling.latency import corrected_load, engine_load
from kubellm.gateway.scheduling.learner import LatencyState, engine_cached_blocks
from kubellm.gateway.scheduling.plugins import RoutingState
from kubellm.gateway.scheduling.prefix import FRESH, REUSED, PrefixIndex
from kubellm.gateway.scheduling.request import RoutingRequest
from kubellm.gateway.scheduling.scheduler import Scheduler

INF = math.inf


@pytest.mark.parametrize(("running", "waiting", "outstanding", "at_scrape", "expected"), [
    (2, 0, 0, None, (2, 0)),  # gauges read with the count: as they are
    (2, 0, 5, None, (5, 0)),  # never below this gateway's own in-flight count
    (2, 0, 3, 1, (4, 0)),  # two sent since, the engine had room: into its batch
    (8, 2, 5, 2, (8, 5)),  # three sent since to a queued engine: into its queue
    (8, 2, 0, 3, (7, 0)),  # three finished since: its queue drained and one slot is free
    (0, 0, 0, 4, (0, 0)),  # more finished than the engine had: nothing, not negative
])
def test_corrected_load(running, waiting, outstanding, at_scrape, expected):
    assert corrected_load(running, waiting, outstanding, at_scrape) == pytest.approx(expected)


@pytest.mark.parametrize(("running", "waiting", "outstanding", "at_scrape", "cap", "expected"), [
    (8, 0, 3, 0, 8, (8, 3)),  # a full batch and no queue at the scrape: three sent since wait
    (6, 0, 3, 0, 8, (8, 1)),  # room for two: the third waits
    (2, 0, 3, 1, 8, (4, 0)),  # room for all: as without a cap
    (8, 2, 5, 2, 8, (8, 5)),  # a queue at the scrape: the cap changes nothing
    (9, 0, 0, 0, 8, (9, 0)),  # running above the cap seen so far (it grows): as scraped
    (8, 0, 3, 0, INF, (11, 0)),  # no cap: all into the batch
    (1, 1, 2, 2, 8, (2, 0)),  # one arrived between two engine steps: not a queue, the batch has room
    (8, 0, 3, 0, 0, (11, 0)),  # no batch size known yet, no queue at the scrape: all into the batch
])
def test_corrected_load_keeps_the_batch_within_what_the_engine_takes(running, waiting, outstanding, at_scrape,
                                                                     cap, expected):
    assert corrected_load(running, waiting, outstanding, at_scrape, cap) == pytest.approx(expected)


def test_the_batch_cap_is_the_pools_largest_batch_seen(make_ep, clock):
    """The trace of issue 18's distinct-prompts shape at 100% load: engine a scraped with a full
    batch (8) and no queue, three more sent to it since; engine b scraped with one running and one
    just arrived (waiting for the engine's next step). Before, a's eleven all ran (no queue wait
    predicted) while b's one waiting was half a decode away, and a won; with the pool's batch size
    (8, seen at a's earlier scrape), a has three waiting and b none."""
    state = LatencyState(clock.now)
    a = make_ep("http://a", scraped=True, running=8.0, waiting=2.0, outstanding=10, outstanding_at_scrape=10)
    b = make_ep("http://b", scraped=True, running=1.0, waiting=1.0, outstanding=2, outstanding_at_scrape=2)
    state.predict(RoutingRequest(model="m", prompt_chars=400), [a, b], {}, 0)
    assert state.pools["m"].batch_cap == 8.0
    a.waiting, a.outstanding_at_scrape, a.outstanding = 0.0, 8, 11  # the next scrape, then three sent
    pred = {p.endpoint: p for p in state.predict(RoutingRequest(model="m", prompt_chars=400), [a, b], {}, 0)}
    assert (pred["http://a"].features.requests, pred["http://a"].features.queue_wait_s) == (
        11.0, pytest.approx(3 * 0.5 / 8))
    assert pred["http://b"].features.queue_wait_s == 0.0
    assert pred["http://b"].ttft_s < pred["http://a"].ttft_s


def test_a_full_batch_is_learned_from_a_queue_that_lasts_two_scrapes(make_ep, clock):
    """Traced on the distinct-prompts shape at 80% load: engine a had 8 running (a full batch)
    and nobody waiting, b had 7 and a prefill just sent. a was predicted quicker and took the
    request, which then waited for a slot (154 ms against ~40). Once a queue has lasted two
    scrapes on some engine, its running count is a full batch and a's new request waits there."""
    state = LatencyState(clock.now)
    a, b = make_ep("http://a"), make_ep("http://b")
    metrics = "vllm:num_requests_running {r}\nvllm:num_requests_waiting {w}\n"
    for ep, (r, w) in ((a, (8, 0)), (b, (7, 0))):
        apply_metrics(ep, parse_engine_metrics(metrics.format(r=r, w=w)))
        ep.outstanding = ep.outstanding_at_scrape = r
    earlier = RoutingRequest(model="m", prompt_chars=560)
    state.predict(earlier, [a, b], {}, 0)
    state.start(earlier, "http://b")  # a prefill just sent to b (one of its 7, by the scrape)

    def chosen() -> str:
        preds = state.predict(RoutingRequest(model="m", prompt_chars=400), [a, b], {}, 0)
        return min(preds, key=lambda p: p.ttft_s).endpoint

    assert chosen() == "http://a"  # no full batch known: a's batch of 8 looks as good as room
    other = make_ep("http://c")
    for _ in range(2):  # another engine of the pool queued at two scrapes in a row, 8 running
        apply_metrics(other, parse_engine_metrics(metrics.format(r=8, w=3)))
        state.predict(RoutingRequest(model="m"), [other], {}, 0)
    assert (other.queued_scrapes, state.pools["m"].full_batch) == (2, 8.0)
    assert chosen() == "http://b"


def test_a_queue_below_the_most_seen_running_is_not_a_full_batch(make_ep, clock):
    """Traced on the chats shape at 80% load (700 blocks): an engine kept a queue for two scrapes
    with 4 running (long prompts: KV blocks or the step's token budget, not sequence slots), and
    from then on every engine running 4 was predicted a wait for a slot (~130 ms, measured ~40).
    Once an engine of the pool is seen running more, a queue at 4 is not a full batch."""
    state = LatencyState(clock.now)
    metrics = "vllm:num_requests_running {r}\nvllm:num_requests_waiting {w}\n"
    queued, busy, probe = make_ep("http://q"), make_ep("http://busy"), make_ep("http://p")
    for _ in range(2):
        apply_metrics(queued, parse_engine_metrics(metrics.format(r=4, w=1)))
        state.predict(RoutingRequest(model="m"), [queued], {}, 0)
    apply_metrics(probe, parse_engine_metrics(metrics.format(r=4, w=0)))
    probe.outstanding = probe.outstanding_at_scrape = 4

    def probe_wait() -> float:
        (pred,) = state.predict(RoutingRequest(model="m", prompt_chars=400), [probe], {}, 0)
        return pred.features.queue_wait_s

    assert probe_wait() > 0  # a queue at 4 is all the pool has shown: 4 is a full batch
    apply_metrics(busy, parse_engine_metrics(metrics.format(r=6, w=0)))
    state.predict(RoutingRequest(model="m"), [busy], {}, 0)
    assert state.pools["m"].batch_cap == 6.0
    assert probe_wait() == 0.0


@pytest.mark.parametrize(("waiting", "streak"), [([0, 2, 3, 0, 1], [0, 1, 2, 0, 1]), ([float("nan")], [0])])
def test_scrapes_count_how_long_a_queue_lasted(make_ep, waiting, streak):
    ep = make_ep("http://a")
    seen = []
    for w in waiting:
        apply_metrics(ep, parse_engine_metrics(f"vllm:num_requests_running 8\nvllm:num_requests_waiting {w}\n"))
        seen.append(ep.queued_scrapes)
    assert seen == streak


@pytest.mark.parametrize(("steps", "pools_left"), [
    ([("forget", "http://x")], {"m"}),  # the other model's only endpoint left: its model goes
    ([("forget", "http://a")], {"m", "other"}),  # one of two: the pool stays
    ([("forget", "http://a"), ("forget", "http://b")], {"other"}),
    ([("move", "http://x", "renamed")], {"m", "renamed"}),  # a reload renamed the model
    ([("move", "http://a", "other")], {"m", "other"}),  # a reload moved one endpoint
    ([("forget", "http://nowhere")], {"m", "other"}),
])
def test_pools_whose_endpoints_all_left_are_pruned(make_ep, clock, steps, pools_left):
    state = LatencyState(clock.now)
    a, b, x = (make_ep(u, scraped=True) for u in ("http://a", "http://b", "http://x"))
    x.pool = "other"
    state.predict(RoutingRequest(model="m"), [a, b, x], {}, 0)
    eps = {e.url: e for e in (a, b, x)}
    for step in steps:
        if step[0] == "forget":
            state.forget_endpoint(step[1])
            eps.pop(step[1], None)
        else:
            eps[step[1]].pool = step[2]
            state.predict(RoutingRequest(model="m"), list(eps.values()), {}, 0)
    assert set(state.pools) == pools_left
    for url, ep in eps.items():  # every endpoint left uses its own pool's model
        assert state.endpoints[url].pool is state.pools[ep.pool]


def test_a_scrape_remembers_the_in_flight_count_it_was_read_with(make_ep):
    ep = make_ep("http://a", outstanding=3)
    apply_metrics(ep, parse_engine_metrics("vllm:num_requests_running 4\nvllm:num_requests_waiting 0\n"))
    assert ep.outstanding_at_scrape == 3
    ep.outstanding = 6  # three more sent through this gateway before the next scrape
    load = engine_load(ep)
    assert (load.running, load.waiting, load.fallback) == (7.0, 0.0, None)


@pytest.mark.parametrize("seed", range(3))
def test_requests_between_two_scrapes_spread_instead_of_piling_onto_the_emptiest_looking(make_ep, clock, seed):
    """Twelve requests arrive before the next scrape; the engines' gauges say a and b are busy,
    c idle. Without the correction every decision saw c idle and sent it all twelve."""
    state = RoutingState(rng=random.Random(seed), latency=LatencyState(clock.now))
    sched = Scheduler(RoutingProfile(scorers=(PluginConfig(type="predicted-latency"),)), state)
    eps = [make_ep(u, scraped=True, running=r, outstanding_at_scrape=0) for u, r in
           (("http://a", 4.0), ("http://b", 4.0), ("http://c", 0.0))]
    sent: Counter[str] = Counter()
    for i in range(12):
        chosen = sched.pick(RoutingRequest(model="m", prompt_chars=200 + i), eps).endpoint
        chosen.outstanding += 1  # what the pool does with the decision
        sent[chosen.url] += 1
    totals = {e.url: e.running + e.outstanding for e in eps}
    assert sent["http://c"] <= 8 and max(totals.values()) - min(totals.values()) <= 1


@pytest.mark.parametrize(("values", "expected"), [
    ([0.100, 0.102, 0.200], [1.0, 1.0, 0.5]),  # within 3% + 2 ms of the best: tied with it
    ([0.010, 0.0115, 0.013], [1.0, 1.0, 10 / 13]),  # the 2 ms matters where TTFTs are small
    ([0.0, 0.0, 0.5], [1.0, 1.0, 0.0]),  # nothing below the tie band of 0 but 2 ms
])
def test_near_equal_predictions_tie(values, expected):
    assert scorers._ratio_to_best(values) == pytest.approx(expected)


def test_equal_requests_are_separate_tickets_and_a_freed_one_hands_on_nothing(make_ep, clock):
    """Tickets are keyed by the request's own serial: two requests alike (same model and prompt)
    are two requests in flight, and a request freed without an end (its id() reused by the next
    one, as CPython does) cannot end or replace another's ticket."""
    state = LatencyState(clock.now)
    eps = [make_ep("http://a", scraped=True), make_ep("http://b", scraped=True)]
    first, second = RoutingRequest(model="m", prompt_chars=400), RoutingRequest(model="m", prompt_chars=400)
    assert first == second and first.serial != second.serial
    for req, url in ((first, "http://a"), (second, "http://b")):
        state.predict(req, eps, {}, 0)
        state.start(req, url)
    assert len(state._tickets) == 2
    for _ in range(50):  # freed without finish(): the next request often gets its id()
        gone = RoutingRequest(model="m", prompt_chars=40, stream=True)
        state.predict(gone, eps, {}, 0)
        state.start(gone, "http://a")
        del gone
    state.finish(RoutingRequest(model="m", prompt_chars=400), ttft_s=0.1, decode_s=1.0, prompt_tokens=100,
                 cached_tokens=0, completion_tokens=5)  # a request never started: ends nobody's ticket
    assert {t.endpoint for t in state._tickets.values()} == {"http://a", "http://b"}
    assert len(state._tickets) == 52
    assert state.observations == 0


def test_ties_are_picked_at_random_not_first(make_ep, clock):
    state = RoutingState(rng=random.Random(1), latency=LatencyState(clock.now))
    sched = Scheduler(RoutingProfile(scorers=(PluginConfig(type="predicted-latency"),)), state)
    eps = [make_ep(u, scraped=True, running=2.0) for u in ("http://a", "http://b", "http://c")]
    in_flight = []  # in flight until the test ends
    for url, chars in (("http://b", 40), ("http://c", 120)):  # noise: a few prefill tokens ahead at b and c
        earlier = RoutingRequest(model="m", prompt_chars=chars)
        state.latency.predict(earlier, eps, {}, 0)
        state.latency.start(earlier, url)
        in_flight.append(earlier)

    def picks(n: int) -> Counter[str]:
        """*n* requests, each picked and then finished, so every pick sees the same state."""
        chosen: Counter[str] = Counter()
        for _ in range(n):
            req = RoutingRequest(model="m", prompt_chars=100)
            chosen[sched.pick(req, eps).endpoint.url] += 1
            state.latency.finish(req, ttft_s=None, decode_s=math.nan, prompt_tokens=0, cached_tokens=None,
                                 completion_tokens=0)
        return chosen

    picked = picks(90)
    assert len(picked) == 3 and min(picked.values()) >= 15
    eps[2].running = 3.0  # predicted alike, but one more request there: the others share the load
    picked = picks(60)
    assert set(picked) == {"http://a", "http://b"} and min(picked.values()) >= 15


def test_one_fit_per_pool_trained_by_every_endpoint(make_ep, clock):
    state = LatencyState(clock.now)
    a, b = make_ep("http://a", scraped=True), make_ep("http://b", scraped=True)
    other = make_ep("http://x", scraped=True)
    other.pool = "other-model"
    state.predict(RoutingRequest(model="m"), [a, b, other], {}, 0)
    assert state.endpoints["http://a"].pool is state.endpoints["http://b"].pool
    assert state.endpoints["http://x"].pool is not state.endpoints["http://a"].pool
    rng = random.Random(0)
    for _ in range(300):  # only a serves; b is 30 ms slower than a throughout (never measured)
        a.waiting, a.running = float(rng.randrange(0, 6)), 4.0
        req = RoutingRequest(model="m", prompt_chars=400)
        pred = {p.endpoint: p for p in state.predict(req, [a], {}, 0)}
        state.start(req, "http://a")
        f = pred["http://a"].features
        state.finish(req, ttft_s=0.02 + 0.5 * f.queue_wait_s, decode_s=0.5, prompt_tokens=100, cached_tokens=0,
                     completion_tokens=2)
        clock.advance(1.0)
    b.waiting, b.running = 4.0, 4.0
    req = RoutingRequest(model="m", prompt_chars=400)
    ttft = {p.endpoint: p for p in state.predict(req, [a, b], {}, 0)}
    # b's queue term was learned from a's requests: the same wait predicted for the same queue
    assert ttft["http://b"].ttft_s == pytest.approx(0.02 + 0.5 * ttft["http://b"].features.queue_wait_s, rel=0.15)


@pytest.mark.parametrize(("blocks", "share", "expected"), [
    (100, 0.0, 0), (100, 0.5, 50), (100, 0.97, 100), (100, 0.949, 94), (10, 0.8, 10), (10, 0.7, 7), (0, 0.5, 0),
])
def test_engine_cached_blocks(blocks, share, expected):
    assert engine_cached_blocks(blocks, share) == expected


@pytest.mark.parametrize(("blocks", "share", "claimed", "expected"), [
    (120, 91 / 120, 92, 92),  # the engine holds the claimed prefix but its last partial token block
    (120, 90 / 120, 92, 92),  # two short: still all of it
    (120, 60 / 120, 92, 60),  # a real miss half way
    (120, 0.0, 92, 0),
    (120, 100 / 120, 92, 100),  # more than the index claimed: as reported
    (100, 0.97, 10, 100),  # within slack of the whole prompt: all of it
])
def test_engine_cached_blocks_against_the_claimed_prefix(blocks, share, claimed, expected):
    assert engine_cached_blocks(blocks, share, claimed) == expected


def test_prefix_index_ages_count_blocks_allocated_since():
    index = PrefixIndex()
    index.record("a", [1, 2, 3])
    index.record("a", [1, 2, 3])  # held: re-touched, nothing allocated
    index.record("a", [10, 11])  # two new blocks
    assert index.ages("a", [1, 2, 3, 4]) == [2, 2, 2]
    assert index.ages("a", [10, 11]) == [0, 0]
    assert index.ages("b", [1]) == []
    assert index.horizon("a") == INF


@pytest.mark.parametrize(("start", "ages", "cached", "expected"), [
    (INF, [50, 50, 60], 3, INF),  # all held: nothing contradicts an unbounded horizon
    (INF, [50, 50, 60], 0, 49.0),  # a block aged 50 was gone: the horizon drops below it
    (100.0, [50, 50, 60], 1, 86.5),  # gone at 50: a quarter of the way down to it, and one below
    (40.0, [50, 50, 60], 3, 46.0),  # held at 60: a quarter of the way up to it, and one above
    (40.0, [30, 50, 60], 1, 40.0),  # gone at 50, held at 30: consistent with 40, unchanged
    (1.0, [0, 0], 0, 0.0),  # never negative
])
def test_learn_horizon(start, ages, cached, expected):
    index = PrefixIndex()
    if not math.isinf(start):
        index._horizons["a"] = (start, INF)
    index.learn_horizon("a", ages, cached)
    assert index.horizon("a") == pytest.approx(expected)


def test_blocks_recorded_again_while_held_are_reused():
    index = PrefixIndex()
    index.record("a", [1, 2])
    index.record("a", [1, 2, 3])  # 1 and 2 hit; 3 new
    index.record("b", [1])
    assert index.block_states("a", [1, 2, 3]) == [(0, REUSED), (0, REUSED), (0, FRESH)]  # one request: one stamp
    assert index.block_states("b", [1, 2]) == [(0, FRESH)]


@pytest.mark.parametrize(("ages", "kinds", "cached", "expected"), [
    # a chat's newest turn gone at age 0 while its system prompt (reused, same age) was held:
    # only the fresh horizon learns it (one horizon for both dropped to 0 and distrusted the prompt)
    ([0, 0, 0], [REUSED, REUSED, FRESH], 2, (0.0, INF)),
    ([80, 80], [REUSED, REUSED], 0, (INF, 79.0)),  # a reused block gone: the reused horizon
    ([5, 5, 5], [FRESH, FRESH, FRESH], 3, (INF, INF)),  # all held: nothing contradicts unbounded ones
])
def test_learn_horizon_per_kind(ages, kinds, cached, expected):
    index = PrefixIndex()
    index.learn_horizon("a", ages, cached, kinds)
    assert (index.horizon("a", FRESH), index.horizon("a", REUSED)) == pytest.approx(expected)


def test_each_kind_of_block_is_matched_within_its_own_horizon():
    index = PrefixIndex()
    index.record("a", range(10))  # a system prompt...
    index.record("a", [*range(10), 100])  # ...sent again (reused) with a chat's turn (fresh)
    index.record("a", range(200, 230))  # thirty other blocks since
    index.learn_horizon("a", [20], 0, [FRESH])  # a fresh block aged 20 was gone
    assert index.matched_blocks([*range(10), 100], ["a"]) == {"a": 10}  # the prompt still, not the turn
    index.learn_horizon("a", [20], 0, [REUSED])
    assert index.matched_blocks([*range(10), 100], ["a"]) == {"a": 0}


def test_blocks_past_the_horizon_are_not_matched_and_count_as_new_when_recorded():
    index = PrefixIndex()
    index.record("a", [1, 2])
    index.record("b", [1, 2])
    index.record("a", range(100, 110))  # ten newer blocks at a
    assert index.matched_blocks([1, 2], ["a", "b"]) == {"a": 2, "b": 2}
    index.learn_horizon("a", [10, 10], 0)  # a's engine had lost blocks aged 10
    assert index.horizon("a") == 9.0
    assert index.matched_blocks([1, 2], ["a", "b"]) == {"a": 0, "b": 2}
    index.record("a", [1, 2])  # sent there again: allocated again, young, matched
    assert index.ages("a", [1, 2]) == [0, 0]
    assert index.matched_blocks([1, 2, 3], ["a", "b"]) == {"a": 2, "b": 2}


def _route(sched: Scheduler, eps, hashes) -> tuple[RoutingRequest, str]:
    req = RoutingRequest(model="m", prefix_hashes=hashes, prompt_chars=64 * len(hashes))
    return req, sched.pick(req, eps).endpoint.url


@pytest.mark.parametrize(("cached_tokens", "contended", "horizon_learned"), [
    (0, False, True),  # the engine had evicted the prefix the index believed cached
    (950, False, False),  # it had it all
    (0, True, False),  # another request there was still bringing it: no evidence
])
def test_the_engines_cached_tokens_teach_the_index(make_ep, clock, cached_tokens, contended, horizon_learned):
    state = RoutingState(rng=random.Random(0), latency=LatencyState(clock.now))
    sched = Scheduler(RoutingProfile(scorers=(PluginConfig(type="predicted-latency"),)), state)
    eps = [make_ep("http://a", scraped=True), make_ep("http://busy", scraped=True, running=50.0, waiting=50.0)]
    prefix = tuple(range(20))
    first, url = _route(sched, eps, prefix)
    state.latency.finish(first, ttft_s=0.2, decode_s=0.5, prompt_tokens=1000, cached_tokens=0, completion_tokens=2)
    clock.advance(5.0)
    _, other = _route(sched, eps, tuple(range(100, 140)))  # 40 other blocks allocated at a since
    if not contended:  # else that request is still before its predicted first token when the next comes
        clock.advance(5.0)
    again, url_again = _route(sched, eps, prefix)
    assert url == other == url_again == "http://a"
    state.latency.finish(again, ttft_s=0.2, decode_s=0.5, prompt_tokens=1000, cached_tokens=cached_tokens,
                         completion_tokens=2)
    horizon = state.prefix.horizon("http://a")
    assert (not math.isinf(horizon)) is horizon_learned
    if horizon_learned:
        assert horizon == 39.0
