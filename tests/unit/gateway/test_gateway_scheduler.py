from __future__ import annotations

import random

import pytest

from kubellm.gateway.config import PluginConfig, RoutingProfile
from kubellm.gateway.errors import ConfigError, NoEndpointError
from kubellm.gateway.scheduling.plugins import RoutingState
from kubellm.gateway.scheduling.request import RoutingRequest
from kubellm.gateway.scheduling.scheduler import Scheduler


def _state() -> RoutingState:
    return RoutingState(rng=random.Random(0))


def test_default_profile_follows_the_prefix_then_balances(make_ep):
    state = _state()
    sched = Scheduler(RoutingProfile(), state)
    eps = [make_ep("http://a"), make_ep("http://b")]
    req = RoutingRequest(model="m", prefix_hashes=(11, 12, 13))
    first = sched.pick(req, eps)
    assert first.prefix_blocks_hit == 0
    again = sched.pick(req, eps)
    assert again.endpoint is first.endpoint
    assert again.prefix_blocks_hit == 3 and again.reason == "prefix-affinity"
    # a long queue on the cached endpoint outweighs part of the affinity, not all of it
    first.endpoint.waiting = 50
    assert sched.pick(req, eps).endpoint is first.endpoint
    first.endpoint.outstanding = 40
    first.endpoint.kv_usage = 0.95
    assert sched.pick(req, eps).endpoint is not first.endpoint


def test_exclude_and_no_endpoint(make_ep):
    sched = Scheduler(RoutingProfile(), _state())
    a, b = make_ep("http://a"), make_ep("http://b", healthy=False)
    assert sched.pick(RoutingRequest(model="m"), [a, b]).endpoint is a
    with pytest.raises(NoEndpointError):
        sched.pick(RoutingRequest(model="m"), [a, b], exclude=frozenset({"http://a"}))


def test_zero_weight_scorer_is_ignored(make_ep):
    profile = RoutingProfile(scorers=(PluginConfig(type="queue-depth", weight=0.0),
                                      PluginConfig(type="kv-cache-usage", weight=1.0)))
    sched = Scheduler(profile, _state())
    eps = [make_ep("http://a", waiting=100, kv_usage=0.1), make_ep("http://b", waiting=0, kv_usage=0.9)]
    assert sched.pick(RoutingRequest(model="m"), eps).endpoint.url == "http://a"


@pytest.mark.parametrize(
    ("profile", "message"),
    [
        (RoutingProfile(filters=(PluginConfig(type="nope"),)), "unknown filter type 'nope'"),
        (RoutingProfile(scorers=(PluginConfig(type="bogus"),)), "unknown scorer type 'bogus'"),
        (RoutingProfile(picker=PluginConfig(type="random-ish")), "unknown picker type"),
        (RoutingProfile(picker=PluginConfig(type="max-score", params={"x": 1})), "takes no parameter"),
        (RoutingProfile(scorers=(PluginConfig(type="precise-prefix", params={"missBlocks": 0}),)),
         "'precise-prefix': params.missBlocks must be a positive whole number of blocks"),
        (RoutingProfile(scorers=(PluginConfig(type="precise-prefix", params={"missBlocks": "16"}),)),
         "params.missBlocks must be a positive whole number"),
    ],
)
def test_bad_plugin_config_is_a_clear_error(profile, message):
    with pytest.raises(ConfigError, match=message):
        Scheduler(profile, _state())


def test_precise_prefix_counts_a_sent_prompt_before_the_engine_reports_it(make_ep):
    """A burst of requests with one new prefix follows the first, though no KV event came yet;
    the engine's events still have the last word (BlockRemoved takes the blocks back)."""
    state = _state()
    profile = RoutingProfile(scorers=(PluginConfig(type="precise-prefix", weight=1),))
    sched = Scheduler(profile, state)
    eps = [make_ep("http://a"), make_ep("http://b")]
    req = RoutingRequest(model="m", token_hashes=(21, 22, 23))
    first = sched.pick(req, eps).endpoint
    assert all(sched.pick(req, eps).endpoint is first for _ in range(5))
    state.precise_prefix.remove(first.url, (21, 22, 23))
    assert state.precise_prefix.matched_blocks((21, 22, 23), [first.url]) == {first.url: 0}


def _precise_profile(miss_blocks: int | None) -> RoutingProfile:
    params = {} if miss_blocks is None else {"missBlocks": miss_blocks}
    return RoutingProfile(scorers=(PluginConfig(type="precise-prefix", weight=3, params=params),
                                   PluginConfig(type="queue-depth", weight=2),
                                   PluginConfig(type="outstanding-requests", weight=2)))


@pytest.mark.parametrize(("miss_blocks", "expected"), [(None, "http://b"), (16, "http://a")])
def test_precise_prefix_miss_blocks_keeps_a_conversation_where_its_history_is(make_ep, miss_blocks, expected):
    """A chat's third turn: a holds its system prompt (100 blocks) and history (17 blocks), b
    the system prompt only and one request fewer. As a share the history is worth 0.4 points,
    less than one request of the outstanding-requests scorer, and the turn moves to b (issue
    16's fourth pass: 15% of turns lost their history so); counted in blocks it stays."""
    state = _state()
    state.precise_prefix.record("http://a", range(117))
    state.precise_prefix.record("http://b", range(100))
    eps = [make_ep("http://a", outstanding=1), make_ep("http://b", outstanding=0)]
    req = RoutingRequest(model="m", token_hashes=tuple(range(125)))
    assert Scheduler(_precise_profile(miss_blocks), state).pick(req, eps).endpoint.url == expected


def test_precise_prefix_miss_blocks_still_yields_to_a_queue(make_ep):
    """Counted in blocks the history weighs as much as the whole prefix, no more: an engine
    with requests waiting and more in flight loses the turn to the other holder."""
    state = _state()
    state.precise_prefix.record("http://a", range(117))
    state.precise_prefix.record("http://b", range(100))
    eps = [make_ep("http://a", outstanding=3, waiting=2), make_ep("http://b", outstanding=1)]
    req = RoutingRequest(model="m", token_hashes=tuple(range(125)))
    assert Scheduler(_precise_profile(16), state).pick(req, eps).endpoint.url == "http://b"
