"""Table-driven tests of the filters and scorers."""

from __future__ import annotations

import pytest

from kubellm.gateway.scheduling import filters, scorers
from kubellm.gateway.scheduling.plugins import SessionTable
from kubellm.gateway.scheduling.prefix import PrefixIndex
from kubellm.gateway.scheduling.request import RoutingRequest

REQ = RoutingRequest(model="m")


@pytest.mark.parametrize(
    ("scorer", "field", "values", "expected"),
    [
        (scorers.outstanding_requests, "outstanding", [0, 5, 10], [1.0, 0.5, 0.0]),
        (scorers.outstanding_requests, "outstanding", [3, 3], [1.0, 1.0]),
        (scorers.queue_depth, "waiting", [4.0, 0.0], [0.0, 1.0]),
        (scorers.kv_cache_usage, "kv_usage", [0.0, 0.25, 1.0], [1.0, 0.75, 0.0]),
        (scorers.kv_cache_usage, "kv_usage", [1.5, -0.1], [0.0, 1.0]),
    ],
)
def test_load_scorers(make_ep, scorer, field, values, expected):
    eps = [make_ep(f"http://e{i}", **{field: v}) for i, v in enumerate(values)]
    assert scorer(REQ, eps) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("lora", "loaded", "expected"),
    [(None, [{"a"}, set()], [0.0, 0.0]), ("a", [{"a"}, set()], [1.0, 0.0]), ("b", [{"a"}, {"b", "a"}], [0.0, 1.0])],
)
def test_lora_affinity(make_ep, lora, loaded, expected):
    eps = [make_ep(f"http://e{i}", loras=frozenset(s)) for i, s in enumerate(loaded)]
    assert scorers.lora_affinity(RoutingRequest(model="m", lora=lora), eps) == expected


def test_prefix_scorer_counts_leading_blocks_only(make_ep):
    index = PrefixIndex()
    index.record("http://a", [1, 2, 3, 4])
    index.record("http://b", [1, 9])  # diverges after one block
    index.record("http://c", [2, 3, 4])  # holds later blocks but not the first
    eps = [make_ep(u) for u in ("http://a", "http://b", "http://c", "http://d")]
    score = scorers.make_prefix_scorer(index)
    assert score(RoutingRequest(model="m", prefix_hashes=(1, 2, 3, 4)), eps) == [1.0, 0.25, 0.0, 0.0]
    assert score(RoutingRequest(model="m"), eps) == [0.0] * 4


def test_precise_prefix_with_miss_blocks_scores_what_an_endpoint_lacks(make_ep):
    """In blocks short of the best holder, not as a share of the prompt: two blocks of
    history after an eight-block system prompt are half the score at missBlocks 4."""
    index = PrefixIndex()
    index.record("http://a", range(10))  # system prompt and history
    index.record("http://b", range(8))  # the system prompt only
    eps = [make_ep(u) for u in ("http://a", "http://b", "http://c")]
    req = RoutingRequest(model="m", token_hashes=tuple(range(12)))
    share = scorers.make_prefix_scorer(index, precise=True)
    lacking = scorers.make_prefix_scorer(index, precise=True, miss_blocks=4)
    assert share(req, eps) == pytest.approx([10 / 12, 8 / 12, 0.0])
    assert lacking(req, eps) == pytest.approx([1.0, 0.5, 0.0])
    assert lacking(RoutingRequest(model="m", token_hashes=(99, 98)), eps) == [0.0] * 3  # nobody holds any


def test_session_scorer(make_ep):
    table = SessionTable()
    table.record("s1", "http://b")
    eps = [make_ep("http://a"), make_ep("http://b")]
    score = scorers.make_session_scorer(table)
    assert score(RoutingRequest(model="m", session="s1"), eps) == [0.0, 1.0]
    assert score(RoutingRequest(model="m", session="other"), eps) == [0.0, 0.0]


def test_healthy_filter_drops_unhealthy_and_open_breakers(make_ep):
    ok, sick, broken = make_ep("http://ok"), make_ep("http://sick", healthy=False), make_ep("http://broken")
    broken.breaker.on_failure()
    broken.breaker.on_failure()
    assert filters.healthy(REQ, [ok, sick, broken]) == [ok]


@pytest.mark.parametrize(
    ("lora", "expected"), [(None, ["http://a", "http://b"]), ("x", ["http://b"]), ("zz", ["http://a", "http://b"])]
)
def test_lora_capable_filter(make_ep, lora, expected):
    eps = [make_ep("http://a"), make_ep("http://b", loras=frozenset({"x"}))]
    assert [e.url for e in filters.lora_capable(RoutingRequest(model="m", lora=lora), eps)] == expected
