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
