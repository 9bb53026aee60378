"""Table-driven tests of the latency model, its learner and the latency-predicting scorers."""

from __future__ import annotations

import math
import random

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from kubellm.gateway.clock import FakeClock
from kubellm.gateway.config import GatewayConfig, PluginConfig, RoutingProfile
from kubellm.gateway.datalayer import apply_metrics, parse_engine_metrics
from kubellm.gateway.errors import ConfigError
from kubellm.gateway.predictionmetrics import register_prediction_metrics
from kubellm.gateway.scheduling import scorers
from kubellm.gateway.scheduling.latency import (PRIOR, Features, Fit, engine_load, kv_wait, queue_wait,
                                                uncached_tokens)
from kubellm.gateway.scheduling.learner import LatencyState
from kubellm.gateway.scheduling.plugins import RoutingState
from kubellm.gateway.scheduling.prefix import PrefixIndex
from kubellm.gateway.scheduling.registry import build_scorer
from kubellm.gateway.scheduling.request import RoutingRequest
from kubellm.gateway.scheduling.scheduler import Scheduler

NAN = float("nan")


@pytest.mark.parametrize(("waiting", "running", "decode_s", "expected"), [
    (0, 8, 1.0, 0.0),  # no queue
    (1, 8, 1.0, 0.125),  # one ahead: an eighth of a decode, eight finishing in one
    (8, 8, 2.0, 2.0),  # a full batch's worth ahead
    (3, 0, 1.0, 3.0),  # nothing running (KV full, say): one at a time
])
def test_queue_wait(waiting, running, decode_s, expected):
    assert queue_wait(waiting, running, decode_s) == pytest.approx(expected)


@pytest.mark.parametrize(("waiting", "running", "full", "expected"), [
    (0, 7, 8, 0.0),  # a free slot: no wait
    (0, 8, 8, 0.125),  # a full batch and nobody waiting: this request waits for one to finish
    (2, 8, 8, 0.375),  # two ahead, and this one
    (0, 9, 8, 1 / 9),  # above the full batch seen so far: full
    (0, 8, 0, 0.0),  # no full batch seen yet: the queue as counted
])
def test_queue_wait_counts_this_request_when_the_batch_is_full(waiting, running, full, expected):
    assert queue_wait(waiting, running, 1.0, full) == pytest.approx(expected)


@pytest.mark.parametrize(("need", "usage", "blocks", "held_by", "running", "expected"), [
    (1600, 0.5, 300, 2, 2, 0.0),  # 100 blocks needed, 150 free: admitted at once
    (1600, 0.9, 300, 2, 2, 0.5),  # 100 needed, 30 free: one of the two (135 blocks each) must finish
    (3200, 0.9, 300, 2, 2, 1.0),  # 200 needed: both, one decode time
    (9600, 0.9, 300, 2, 2, 1.0),  # more than the cache: at most one decode time (all it ran has gone)
    (1600, 0.9, 300, 2, 4, 0.25),  # running more now than at the scrape: they drain faster
    (1600, 0.0, 300, 0, 0, 0.0),  # nothing held, too big for the cache: the engine's error, not a wait
    (1600, 0.9, NAN, 2, 2, 0.0),  # the engine does not report its cache: no KV term
    (1600, 1.5, 300, 2, 2, 0.0),  # nonsense usage: no KV term
])
def test_kv_wait(need, usage, blocks, held_by, running, expected):
    assert kv_wait(need, usage, blocks, 16, held_by, running, 1.0) == pytest.approx(expected)


def test_prediction_waits_for_kv_blocks_on_an_engine_short_of_them(make_ep, clock):
    """An engine running two long prompts in a 300-block cache has no room for a third although
    its batch does: the latency model sends the request to the engine with free blocks."""
    state = _state(clock)
    cache = 'vllm:cache_config_info{{block_size="16",num_gpu_blocks="300"}} 1\n'
    full, roomy = make_ep("http://full"), make_ep("http://roomy")
    for ep, running, usage in ((full, 2, 0.95), (roomy, 3, 0.3)):
        apply_metrics(ep, parse_engine_metrics(cache.format() + f"vllm:num_requests_running {running}\n"
                                               f"vllm:num_requests_waiting 0\nvllm:kv_cache_usage_perc {usage}\n"))
    assert (full.kv_blocks, full.block_size) == (300.0, 16.0)
    preds = {p.endpoint: p for p in state.predict(RoutingRequest(model="m", prompt_chars=8000), [full, roomy], {}, 0)}
    assert preds["http://full"].features.queue_wait_s > 0 == preds["http://roomy"].features.queue_wait_s
    assert preds["http://full"].ttft_s > preds["http://roomy"].ttft_s


@pytest.mark.parametrize(("tokens", "matched", "blocks", "expected"), [
    (1000, 0, 10, 1000), (1000, 5, 10, 500), (1000, 10, 10, 0), (1000, 12, 10, 0), (1000, 0, 0, 1000),
])
def test_uncached_tokens(tokens, matched, blocks, expected):
    assert uncached_tokens(tokens, matched, blocks) == pytest.approx(expected)


@pytest.mark.parametrize(("fields", "fallback", "waiting"), [
    ({"scraped": False, "waiting": 5.0}, "unscraped", 0.0),
    ({"scraped": True, "waiting": NAN}, "not_finite", 0.0),
    ({"scraped": True, "running": math.inf}, "not_finite", 0.0),
    ({"scraped": True, "waiting": -3.0}, "negative", 0.0),
    ({"scraped": True, "kv_usage": -0.1}, "negative", 0.0),
    ({"scraped": True, "waiting": 4.0, "running": 2.0}, None, 4.0),
])
def test_engine_load_checks_the_gauges(make_ep, fields, fallback, waiting):
    load = engine_load(make_ep("http://a", **fields))
    assert (load.fallback, load.waiting) == (fallback, waiting)


def test_fit_learns_known_coefficients_and_ignores_nonsense():
    fit = Fit()
    rng = random.Random(1)
    b, p, c, s = 0.03, 0.2, 0.01, 0.8  # 30 ms, 0.2 s per 1,000 tokens, 10 ms a request, 0.8 of the wait
    for _ in range(400):
        f = Features(rng.uniform(0, 3000), rng.uniform(0, 2000), rng.randrange(12),
                     rng.choice([0.0, rng.uniform(0, 2)]))
        x = f.vector()
        assert fit.update(x, b + p * x[1] + c * x[2] + s * x[3] + rng.gauss(0, 0.002))
    assert fit.coefficients() == pytest.approx((b, p, c, s), rel=0.1, abs=0.01)
    before = list(fit.theta)
    for y in (NAN, -1.0, math.inf):
        assert not fit.update((1.0, 1.0, 0.0, 0.0), y)
    assert not fit.update((1.0, NAN, 0.0, 0.0), 0.5)
    assert fit.theta == before


def test_fit_keeps_the_ranking_coefficients_positive_and_predictions_non_negative():
    fit = Fit()
    for _ in range(50):  # TTFT falling as prompts grow: a negative slope, never used as one
        fit.update((1.0, 5.0, 2.0, 0.0), 0.01)
        fit.update((1.0, 0.0, 0.0, 0.0), 0.5)
    b, p, c, s = fit.coefficients()
    assert p > 0 and c > 0 and s >= 0  # b, the same for every endpoint, is left free
    assert fit.predict((1.0, 5.0, 2.0, 0.0)) >= 0 and fit.predict((1.0, 0.0, 0.0, 0.0)) >= 0


def _state(clock: FakeClock) -> LatencyState:
    return LatencyState(clock.now)


def _predict(state: LatencyState, eps, matched=None, chars=4000, blocks=10):
    req = RoutingRequest(model="m", prompt_chars=chars)
    return req, {p.endpoint: p.ttft_s for p in state.predict(req, eps, matched or {}, blocks)}


def test_prediction_follows_the_formula(make_ep, clock):
    state = _state(clock)
    eps = [make_ep("http://a", scraped=True), make_ep("http://b", scraped=True)]
    _, t = _predict(state, eps, matched={"http://a": 10})
    b, p, c, _ = PRIOR
    assert t["http://a"] == pytest.approx(b)  # all cached, idle: the fixed cost only
    assert t["http://b"] == pytest.approx(b + p * 1.0)  # 4,000 chars ~ 1,000 tokens uncached
    eps[1].running = 3.0  # three in its batch
    _, t = _predict(state, eps, matched={"http://a": 10})
    assert t["http://b"] == pytest.approx(b + p * 1.0 + c * 3)


@pytest.mark.parametrize(("a_fields", "a_matched", "winner"), [
    ({}, 10, "http://a"),  # idle: the cache wins
    ({"waiting": 60.0, "running": 8.0}, 10, "http://b"),  # a long queue costs more than a miss
    ({"outstanding": 80, "scraped": False}, 10, "http://b"),  # engine silent: the gateway's own count
    ({}, 0, None),  # nothing to tell them apart: equal
    ({"running": 2.0}, 0, "http://b"),  # caches equal: the smaller batch
])
def test_prediction_trades_cache_against_queue(make_ep, clock, a_fields, a_matched, winner):
    state = _state(clock)
    a = make_ep("http://a", scraped=True)
    b = make_ep("http://b", scraped=True)
    for k, v in a_fields.items():
        setattr(a, k, v)
    _, t = _predict(state, [a, b], matched={"http://a": a_matched})
    if winner is None:
        assert t["http://a"] == pytest.approx(t["http://b"])
    else:
        assert min(t, key=t.__getitem__) == winner


def test_own_requests_ahead_count_until_their_predicted_first_token(make_ep, clock):
    state = _state(clock)
    a, b = make_ep("http://a"), make_ep("http://b")
    req, before = _predict(state, [a, b])
    state.start(req, "http://a")
    _, during = _predict(state, [a, b])
    assert during["http://a"] > before["http://a"] and during["http://b"] == pytest.approx(before["http://b"])
    clock.advance(10.0)  # long past its predicted first token: no longer ahead of anyone
    _, after = _predict(state, [a, b])
    assert after["http://a"] == pytest.approx(before["http://a"])


@pytest.mark.parametrize(("fields", "reason"), [
    ({"scraped": False}, "unscraped"),
    ({"scraped": True, "waiting": NAN}, "not_finite"),
    ({"scraped": True, "running": -1.0}, "negative"),
])
def test_bad_engine_metrics_fall_back_and_are_counted(make_ep, clock, fields, reason):
    state = _state(clock)
    bad = make_ep("http://bad", outstanding=3, **fields)
    _, t = _predict(state, [bad, make_ep("http://ok", scraped=True)])
    assert all(math.isfinite(v) and v >= 0 for v in t.values())
    assert state.fallbacks[("http://bad", reason)] == 1
    assert ("http://ok", reason) not in state.fallbacks


def test_decode_histogram_feeds_decode_time_and_a_reset_counter_is_counted(make_ep, clock):
    state = _state(clock)
    ep = make_ep("http://a", scraped=True, decode_s_sum=10.0, decode_count=10.0)
    _predict(state, [ep])
    ep.decode_s_sum, ep.decode_count = 40.0, 20.0  # ten more requests, 3 s each
    _predict(state, [ep])
    assert state.endpoints["http://a"].decode_s == pytest.approx(0.5 + 0.1 * (3.0 - 0.5))
    ep.decode_s_sum, ep.decode_count = 1.0, 1.0  # the engine restarted
    _predict(state, [ep])
    assert state.fallbacks[("http://a", "counter_backwards")] == 1
    assert state.endpoints["http://a"].decode_s == pytest.approx(0.75)


def test_finish_learns_from_what_was_measured(make_ep, clock):
    state = _state(clock)
    a = make_ep("http://a")
    errors = []
    for _ in range(60):  # the engine is slower than the prior: 1 s per 1,000 uncached tokens
        req, t = _predict(state, [a], chars=4000)
        state.start(req, "http://a")
        measured = 0.02 + 1.0 * (1000 - 200) / 1000
        errors.append(abs(t["http://a"] - measured))
        state.finish(req, ttft_s=measured, decode_s=0.4, prompt_tokens=1000, cached_tokens=200, completion_tokens=5)
        clock.advance(5.0)
    assert errors[-1] < 0.1 * errors[0]
    assert state.observations == 60
    assert state.tokens_per_char == pytest.approx(0.25, rel=0.01)
    assert state.mean_uncached == pytest.approx(800, rel=0.05)
    assert state.endpoints["http://a"].tpot_s == pytest.approx(0.1)
    abs_err, rel_err = state.error_quantiles()
    assert abs_err < 0.5 and rel_err < 1.0


@pytest.mark.parametrize("ttft", [None, NAN, -0.5])
def test_finish_without_a_usable_ttft_only_drops_the_ticket(make_ep, clock, ttft):
    state = _state(clock)
    req, _ = _predict(state, [make_ep("http://a")])
    state.start(req, "http://a")
    state.finish(req, ttft_s=ttft, decode_s=NAN, prompt_tokens=0, cached_tokens=None, completion_tokens=0)
    assert state.observations == 0 and math.isnan(state.error_quantiles()[0])
    state.finish(req, ttft_s=0.1, decode_s=0.1, prompt_tokens=10, cached_tokens=0, completion_tokens=2)
    assert state.observations == 0  # its ticket is gone: nothing to learn from


def test_latency_scorer_uses_precise_hashes_when_the_request_has_them(make_ep, clock):
    approximate, precise = PrefixIndex(), PrefixIndex()
    approximate.record("http://a", [1, 2])
    precise.record("http://b", [7, 8])
    score = scorers.make_latency_scorer(_state(clock), approximate, precise)
    eps = [make_ep("http://a"), make_ep("http://b")]
    by_chars = score(RoutingRequest(model="m", prefix_hashes=(1, 2), prompt_chars=8000), eps)
    by_tokens = score(RoutingRequest(model="m", prefix_hashes=(1, 2), token_hashes=(7, 8), prompt_chars=8000), eps)
    assert by_chars[0] == 1.0 and by_chars[1] < 1.0
    assert by_tokens[1] == 1.0 and by_tokens[0] < 1.0


@pytest.mark.parametrize(("target_ms", "tpot_ms", "expected_order"), [
    (10_000, None, ["http://a", "http://b"]),  # both meet it: the cached one keeps more headroom
    (10_000, 50, ["http://b", "http://a"]),  # a's decode is too slow for the TPOT target
    (1, None, ["http://a", "http://b"]),  # neither meets it: lowest predicted TTFT first
])
def test_slo_scorer(make_ep, clock, target_ms, tpot_ms, expected_order):
    state = _state(clock)
    state._endpoint("http://a").tpot_s = 0.2
    state._endpoint("http://b").tpot_s = 0.02
    index = PrefixIndex()
    index.record("http://a", [1, 2])
    score = scorers.make_slo_scorer(state, index, PrefixIndex(), ttft_target_s=target_ms / 1000,
                                    tpot_target_s=None if tpot_ms is None else tpot_ms / 1000)
    eps = [make_ep("http://a"), make_ep("http://b")]
    values = score(RoutingRequest(model="m", prefix_hashes=(1, 2), prompt_chars=8000), eps)
    ranked = [e.url for _, e in sorted(zip(values, eps), key=lambda p: -p[0])]
    assert ranked == expected_order
    assert all(0.0 <= v <= 1.0 for v in values)
    meets = [v >= 0.5 for v in values]
    assert meets == ([True, True] if target_ms > 1 and tpot_ms is None else
                     [False, True] if tpot_ms else [False, False])


@pytest.mark.parametrize(("params", "message"), [
    ({}, "params.ttftTargetMs"),
    ({"ttftTargetMs": -5}, "params.ttftTargetMs"),
    ({"ttftTargetMs": "fast"}, "params.ttftTargetMs"),
    ({"ttftTargetMs": 500, "tpotTargetMs": 0}, "params.tpotTargetMs"),
    ({"ttftTargetMs": 500, "target": 1}, "takes no parameter"),
])
def test_slo_scorer_config_errors_name_the_parameter(params, message):
    with pytest.raises(ConfigError, match=message):
        build_scorer(PluginConfig(type="slo-latency", params=params), RoutingState())


def test_scheduler_with_the_predicted_latency_profile_learns_per_request(make_ep, clock):
    state = RoutingState(rng=random.Random(0), latency=LatencyState(clock.now))
    sched = Scheduler(RoutingProfile(scorers=(PluginConfig(type="predicted-latency"),)), state)
    eps = [make_ep("http://a"), make_ep("http://b")]
    req = RoutingRequest(model="m", prefix_hashes=(5, 6, 7), prompt_chars=4000)
    first = sched.pick(req, eps)
    state.latency.finish(req, ttft_s=0.3, decode_s=1.0, prompt_tokens=1000, cached_tokens=0, completion_tokens=10)
    assert state.latency.observations == 1
    again = RoutingRequest(model="m", prefix_hashes=(5, 6, 7), prompt_chars=4000)
    assert sched.pick(again, eps).endpoint is first.endpoint  # its prefix is cached there


def test_metrics_expose_fallbacks_and_prediction_error(make_ep, clock):
    state = _state(clock)
    registry = CollectorRegistry()
    register_prediction_metrics(registry, state)
    _predict(state, [make_ep("http://a", scraped=True, waiting=NAN)])
    text = generate_latest(registry).decode()
    assert 'kubellm_routing_engine_metrics_fallback_total{endpoint="http://a",reason="not_finite"} 1.0' in text
    assert 'kubellm_ttft_prediction_abs_error_seconds{quantile="0.5"} NaN' in text
    assert "kubellm_ttft_prediction_observations_total 0.0" in text


def test_datalayer_reads_the_decode_histogram(make_ep):
    text = ('vllm:num_requests_running{model_name="m"} 2\n'
            'vllm:request_decode_time_seconds_sum{model_name="m"} 12.5\n'
            'vllm:request_decode_time_seconds_count{model_name="m"} 5\n'
            'vllm:num_requests_waiting{model_name="m"} NaN\n')
    ep = make_ep("http://a")
    apply_metrics(ep, parse_engine_metrics(text))
    assert (ep.decode_s_sum, ep.decode_count, ep.running) == (12.5, 5.0, 2.0)
    assert math.isnan(ep.waiting) and engine_load(ep).fallback == "not_finite"
    silent = make_ep("http://b")
    apply_metrics(silent, parse_engine_metrics(""))
    assert math.isnan(silent.decode_s_sum)


def test_the_default_profile_predicts_latency_and_keeps_the_weighted_one_by_name(make_ep, clock):
    """Issue 18: the latency-predicting profile won (docs/gateway.md, fifth pass), so it is the
    default, with session and adapter affinity beside it; the fixed weights stay as ``weighted``."""
    profiles = GatewayConfig().all_profiles()
    assert profiles["weighted"] == RoutingProfile()
    assert [(s.type, s.weight) for s in profiles["default"].scorers] == [
        ("predicted-latency", 4.0), ("session-affinity", 1.0), ("lora-affinity", 1.0)]
    assert [s.type for s in profiles["predicted-latency"].scorers] == ["predicted-latency"]
    for seed in range(20):  # without a session or an adapter it picks as predicted-latency does
        rng = random.Random(seed)
        eps = [make_ep(u, scraped=True, running=float(rng.randrange(8)), waiting=float(rng.randrange(3)))
               for u in ("http://a", "http://b", "http://c")]
        picks = {name: Scheduler(profiles[name], RoutingState(rng=random.Random(seed), latency=LatencyState(clock.now)))
                 .pick(RoutingRequest(model="m", prompt_chars=400), eps).endpoint.url
                 for name in ("default", "predicted-latency")}
        assert picks["default"] == picks["predicted-latency"]


@pytest.mark.parametrize(("a_waiting", "expected"), [
    (0.0, "http://a"),  # predicted alike: the session stays where it was served
    (6.0, "http://b"),  # its engine predicted far slower (a queue there): it moves
])
def test_the_default_keeps_a_session_only_where_the_prediction_is_close(make_ep, clock, a_waiting, expected):
    for seed in range(10):  # a tie would go either way at random: the session decides it
        state = RoutingState(rng=random.Random(seed), latency=LatencyState(clock.now))
        sched = Scheduler(GatewayConfig().all_profiles()["default"], state)
        state.sessions.record("s1", "http://a")
        a = make_ep("http://a", scraped=True, running=3.0, waiting=a_waiting)
        b = make_ep("http://b", scraped=True, running=3.0)
        assert sched.pick(RoutingRequest(model="m", prompt_chars=400, session="s1"), [a, b]).endpoint.url == expected
