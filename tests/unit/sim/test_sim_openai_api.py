"""Request validation and response encoding, as vLLM's OpenAI server does them."""

from __future__ import annotations

import json

import pytest

from kubellm.sim import openai_api, textgen, tokenizer
from kubellm.sim.errors import RequestError

VOCAB = textgen.build_vocab()


def plan(body: dict, chat: bool = False, max_len: int = 1000) -> openai_api.Plan:
    return openai_api.plan_request(body, chat, VOCAB, max_len, 64)


def test_prompt_longer_than_max_model_len_is_a_400_naming_the_limit() -> None:
    with pytest.raises(RequestError) as err:
        plan({"prompt": "word " * 2000})
    assert err.value.status == 400 and "maximum context length is 1000" in err.value.message


def test_prompt_plus_max_tokens_over_the_limit_is_a_400() -> None:
    with pytest.raises(RequestError) as err:
        plan({"prompt": "hi", "max_tokens": 1000})
    assert "in the completion" in err.value.message


@pytest.mark.parametrize("body, param", [
    ({"prompt": "x", "max_tokens": 0}, "max_tokens"),
    ({"prompt": "x", "n": 2}, "n"),
    ({"prompt": {"a": 1}}, "prompt"),
    ({"max_tokens": 3}, "prompt"),
    ({"prompt": "x", "stop": 3}, "stop"),
])
def test_invalid_fields_name_the_parameter(body: dict, param: str) -> None:
    with pytest.raises(RequestError) as err:
        plan(body)
    assert err.value.param == param


def test_chat_needs_messages() -> None:
    with pytest.raises(RequestError):
        plan({"messages": []}, chat=True)


def test_max_tokens_sets_the_length_and_seed_sets_the_text() -> None:
    a = plan({"prompt": "hello", "max_tokens": 12, "seed": 3})
    b = plan({"prompt": "hello", "max_tokens": 12, "seed": 3})
    assert len(a.out_idx) == 12 and a.finish_reason == "length"
    assert a.out_idx == b.out_idx


def test_without_max_tokens_the_request_stops_at_an_eos_at_least_min_tokens_long() -> None:
    p = plan({"prompt": "hello", "seed": 1, "min_tokens": 40})
    assert 40 <= len(p.out_idx) <= 64 and p.finish_reason == "stop"


def test_stop_string_cuts_the_output() -> None:
    full = plan({"prompt": "hello", "max_tokens": 60, "seed": 9})
    text = "".join(VOCAB.texts[i] for i in full.out_idx)
    stop = VOCAB.texts[full.out_idx[30]]
    cut = plan({"prompt": "hello", "max_tokens": 60, "seed": 9, "stop": [stop]})
    cut_text = "".join(VOCAB.texts[i] for i in cut.out_idx)
    assert cut.finish_reason == "stop" and cut.stop_reason == stop
    assert stop not in cut_text and text.startswith(cut_text) and len(cut.out_idx) <= 30


def test_prompt_as_token_ids() -> None:
    ids = tokenizer.encode("some text here")
    assert plan({"prompt": ids, "max_tokens": 1}).prompt_ids == ids


def test_stream_chunks_are_sse_lines_of_valid_json_ending_with_done() -> None:
    p = plan({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 5, "stream": True,
              "stream_options": {"include_usage": True}}, chat=True)
    enc = openai_api.ChunkEncoder(p, "m", VOCAB)
    raw = enc.role_chunk() + enc.tokens(0, 5) + enc.final(5, 0, None)
    events = [e for e in raw.decode().split("\n\n") if e]
    assert events[-1] == "data: [DONE]"
    chunks = [json.loads(e.removeprefix("data: ")) for e in events[:-1]]
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    assert text == "".join(VOCAB.texts[i] for i in p.out_idx)
    assert chunks[-1]["usage"]["completion_tokens"] == 5 and chunks[-1]["choices"] == []
    assert chunks[-2]["choices"][0]["finish_reason"] == "length"


def test_error_body_has_openai_shape() -> None:
    body = json.loads(openai_api.error_body(RequestError("bad", param="x")))
    assert body["error"] == {"message": "bad", "type": "BadRequestError", "param": "x", "code": 400}
