from __future__ import annotations

import random
from collections import Counter

import pytest

from kubellm.gateway.scheduling import pickers
from kubellm.gateway.scheduling.request import RoutingRequest

REQ = RoutingRequest(model="m")


def test_max_score_picks_best_and_breaks_ties_at_random(make_ep):
    eps = [make_ep("http://a"), make_ep("http://b"), make_ep("http://c")]
    pick = pickers.make_max_score(random.Random(1))
    assert pick(REQ, eps, [0.1, 0.9, 0.3]).url == "http://b"
    seen = Counter(pick(REQ, eps, [1.0, 1.0, 0.0]).url for _ in range(200))
    assert set(seen) == {"http://a", "http://b"}
    assert min(seen.values()) > 60


def test_round_robin_cycles(make_ep):
    eps = [make_ep("http://b"), make_ep("http://a")]
    pick = pickers.make_round_robin()
    assert [pick(REQ, eps, [0, 0]).url for _ in range(4)] == ["http://a", "http://b"] * 2


def test_power_of_two_never_picks_the_worst_of_three_more_than_a_third(make_ep):
    eps = [make_ep(u) for u in ("http://a", "http://b", "http://c")]
    pick = pickers.make_power_of_two(random.Random(3))
    seen = Counter(pick(REQ, eps, [1.0, 0.5, 0.0]).url for _ in range(600))
    # the worst only wins when drawn against itself, which sampling without replacement forbids
    assert seen["http://c"] == 0
    assert seen["http://a"] > seen["http://b"] > 0


def test_consistent_hash_is_sticky_and_bounded(make_ep):
    eps = [make_ep(u) for u in ("http://a", "http://b", "http://c")]
    pick = pickers.make_consistent_hash(random.Random(0), load_factor=1.25)
    req = RoutingRequest(model="m", session="user-42")
    first = pick(req, eps, [0, 0, 0])
    assert all(pick(req, eps, [0, 0, 0]) is first for _ in range(10))
    first.outstanding = 10  # overloaded beyond 1.25 x mean: the key moves on
    moved = pick(req, eps, [0, 0, 0])
    assert moved is not first
    # keys spread over the ring
    owners = Counter(pick(RoutingRequest(model="m", session=f"s{i}"), eps, [0, 0, 0]).url
                     for i in range(300) if not setattr(first, "outstanding", 0))
    assert len(owners) == 3


@pytest.mark.parametrize("factory", [pickers.make_max_score, pickers.make_power_of_two, pickers.make_consistent_hash])
def test_single_candidate(make_ep, factory):
    ep = make_ep("http://only")
    assert factory(random.Random(0))(REQ, [ep], [0.0]) is ep
