"""The cause split of bench/precise_misses.py (issue 16's fourth pass): every missed prompt
token of a turn is put down to exactly one cause."""

from __future__ import annotations

import pytest

from tests.scripts import load_script


@pytest.fixture(scope="module")
def pm():
    return load_script("bench/precise_misses.py")


@pytest.mark.parametrize(
    ("turn", "held", "ever", "cached_blocks", "engine", "expected"),
    [
        # a later turn sent to an engine holding the system prompt, not the history
        (1, {"a": 120, "b": 100}, 120, 100, "b", {"sent_away": 20, "new": 10}),
        # a first turn whose system prompt no engine has held yet
        (0, {"a": 0, "b": 0}, 0, 0, "a", {"cold": 115, "new": 15}),
        # held once, evicted everywhere since
        (2, {"a": 0, "b": 0}, 115, 0, "a", {"evicted": 115, "new": 15}),
        # the chosen engine held it when sent, not at its prefill
        (3, {"a": 125, "b": 0}, 125, 100, "a", {"lost": 25, "new": 5}),
    ],
)
def test_each_missed_token_has_one_cause(pm, turn, held, ever, cached_blocks, engine, expected):
    block = pm.BLOCK
    t = pm.Turn(rid="s-0", system=0, turn=turn, sent=0.0, held=held, blocks=130, ever=ever,
                prompt_tokens=130 * block + 5, cached_tokens=cached_blocks * block, engine=engine)
    split = pm.classify(t, 115)
    assert {k: v // block for k, v in split.items() if v and k != "partial"} == expected
    assert split["partial"] == 5
    assert sum(split.values()) == t.prompt_tokens - t.cached_tokens
