from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from kubellm.bench.errors import WorkloadError
from kubellm.bench.workload import Length, WorkloadConfig, generate, load_dataset


@pytest.mark.parametrize(("text", "low", "high"), [("128", 128, 128), ("64:256", 64, 256), ("7:7", 7, 7)])
def test_length_parses_fixed_and_ranges(text: str, low: int, high: int) -> None:
    assert Length.parse(text) == Length(low=low, high=high)


@pytest.mark.parametrize(("text", "fragment"), [("abc", "not N or LOW:HIGH"), ("1:2:3", "not N or LOW:HIGH"),
                                                ("9:3", "reversed"), ("0", "greater than or equal to 1")])
def test_length_rejects_bad_input_with_a_hint(text: str, fragment: str) -> None:
    with pytest.raises(WorkloadError, match=fragment):
        Length.parse(text)


def test_same_seed_same_requests_other_seed_other_requests() -> None:
    config = WorkloadConfig(prompt_tokens=Length(low=5, high=50), output_tokens=Length(low=1, high=99))
    assert generate(config, 30) == generate(config, 30)
    assert generate(config, 30) != generate(config.model_copy(update={"seed": 1}), 30)


def test_synthetic_lengths_stay_in_range_and_vary() -> None:
    config = WorkloadConfig(prompt_tokens=Length(low=5, high=50), output_tokens=Length(low=10, high=20))
    requests = generate(config, 200)
    words = [len(r.messages[-1]["content"].split()) for r in requests]
    outputs = [r.max_tokens for r in requests]
    assert min(words) >= 5 and max(words) <= 50 and len(set(words)) > 10
    assert min(outputs) >= 10 and max(outputs) <= 20 and len(set(outputs)) == 11


def test_fixed_lengths_are_exact() -> None:
    requests = generate(WorkloadConfig(prompt_tokens=Length(low=32, high=32)), 10)
    assert {len(r.messages[0]["content"].split()) for r in requests} == {32}
    assert {r.max_tokens for r in requests} == {64}


def test_shared_prefix_uses_exactly_the_given_number_of_system_prompts() -> None:
    config = WorkloadConfig(kind="shared-prefix", prefix_count=3, prefix_tokens=40)
    requests = generate(config, 100)
    systems = {r.messages[0]["content"] for r in requests}
    assert len(systems) == 3
    assert all(r.messages[0]["role"] == "system" and len(r.messages[0]["content"].split()) == 40 for r in requests)
    assert len({r.messages[1]["content"] for r in requests}) == 100  # user parts differ


def test_multi_turn_history_grows_turn_by_turn() -> None:
    requests = generate(WorkloadConfig(kind="multi-turn", turns=3), 12)  # 4 conversations
    by_conv: dict[int, list] = {}
    for r in requests:
        assert r.conversation is not None
        by_conv.setdefault(r.conversation, []).append(r)
    assert sorted(by_conv) == [0, 1, 2, 3]
    for turns in by_conv.values():
        assert [len(t.messages) for t in turns] == [1, 3, 5]
        for earlier, later in zip(turns, turns[1:]):
            assert later.messages[: len(earlier.messages)] == earlier.messages
            assert later.messages[len(earlier.messages)]["role"] == "assistant"
    # round robin: every conversation's first turn comes before any second turn
    assert [r.turn for r in requests] == [0] * 4 + [1] * 4 + [2] * 4


def test_dataset_rows_are_cycled_in_a_seeded_order(tmp_path: Path) -> None:
    path = tmp_path / "chats.jsonl"
    rows = [{"messages": [{"role": "user", "content": f"q{i}"}], "max_tokens": i + 1} for i in range(3)]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n")
    config = WorkloadConfig(kind="dataset", dataset=path)
    requests = generate(config, 7)
    assert len(requests) == 7
    assert {r.messages[0]["content"] for r in requests[:3]} == {"q0", "q1", "q2"}
    assert requests == generate(config, 7)
    assert {r.max_tokens for r in requests} <= {1, 2, 3}


@pytest.mark.parametrize(("line", "fragment"), [
    ("not json", "line 2: not JSON"),
    ('{"prompt": "x"}', "line 2: needs a non-empty 'messages' list"),
    ('{"messages": [{"role": "user"}]}', "line 2: each message needs string 'role' and 'content'"),
    ('{"messages": [{"role": "user", "content": "x"}], "max_tokens": 0}', "line 2: 'max_tokens'"),
])
def test_bad_dataset_lines_are_named(tmp_path: Path, line: str, fragment: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"messages": [{"role": "user", "content": "ok"}]}\n' + line + "\n")
    with pytest.raises(WorkloadError, match=fragment):
        load_dataset(path)


def test_missing_and_empty_datasets_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(WorkloadError, match="cannot read dataset"):
        load_dataset(tmp_path / "nope.jsonl")
    (tmp_path / "empty.jsonl").write_text("\n")
    with pytest.raises(WorkloadError, match="has no requests"):
        load_dataset(tmp_path / "empty.jsonl")


def test_dataset_kind_and_file_go_together(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="dataset file is needed"):
        WorkloadConfig(kind="dataset")
    with pytest.raises(ValidationError, match="dataset file is needed"):
        WorkloadConfig(kind="synthetic", dataset=tmp_path / "x.jsonl")


def test_request_count_must_be_positive() -> None:
    with pytest.raises(WorkloadError, match="at least 1"):
        generate(WorkloadConfig(), 0)
