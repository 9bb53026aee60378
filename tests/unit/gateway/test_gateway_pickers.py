from __future__ import annotations

import json
import os
import random
import subprocess
import sys
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


def test_two_gateway_processes_send_a_prefix_to_the_same_engine(make_ep):
    """The prefix-hash profile's key is the prompt's first block hash, the same in every
    process whatever its hash salt (PYTHONHASHSEED): gateway replicas agree on the engine."""
    prompts = [f"system prompt {i}: " + "shared context " * 10 for i in range(8)]
    code = ("import sys, json; from kubellm.gateway.scheduling.prefix import block_hashes; "
            "print(json.dumps([block_hashes(p, 64)[0] for p in json.loads(sys.argv[1])]))")
    keys = [json.loads(subprocess.run([sys.executable, "-c", code, json.dumps(prompts)], capture_output=True, text=True,
                                      check=True, env={"PYTHONHASHSEED": seed}).stdout) for seed in ("1", "2")]
    assert keys[0] == keys[1]
    eps = [make_ep(u) for u in ("http://a", "http://b", "http://c", "http://d")]
    replicas = [pickers.make_consistent_hash(random.Random(seed)) for seed in (1, 2)]
    chosen = [[pick(RoutingRequest(model="m", prefix_hashes=(k,)), eps, [0.0] * 4).url for k in keys[0]] for pick in replicas]
    assert chosen[0] == chosen[1] and len(set(chosen[0])) > 1


def test_a_sessions_hash_key_is_the_same_in_every_process() -> None:
    """Two gateway replicas (or workers) must agree on a session's endpoint: the key may not
    depend on the process's hash seed."""
    code = "from kubellm.gateway.scheduling.request import RoutingRequest as R; print(R('m', session='user-42').hash_key)"
    keys = {subprocess.run([sys.executable, "-c", code], env={**os.environ, "PYTHONHASHSEED": seed},
                           capture_output=True, text=True, check=True).stdout for seed in ("1", "2")}
    assert keys == {f"{RoutingRequest('m', session='user-42').hash_key}\n"}
