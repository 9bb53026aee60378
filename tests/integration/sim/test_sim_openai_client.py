"""The real `openai` client against the simulator: chat and completions, streamed or not."""

from __future__ import annotations

import openai
import pytest

from kubellm.sim import Fleet, SimConfig, run_engine, tokenizer


@pytest.fixture
def client(fleet2: Fleet) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=fleet2[0] + "/v1", api_key="unused", max_retries=0)


async def test_chat_non_streaming_counts_usage(client: openai.AsyncOpenAI) -> None:
    r = await client.chat.completions.create(model="sim-model", max_tokens=7, seed=1,
                                             messages=[{"role": "user", "content": "Hello there"}])
    assert r.object == "chat.completion" and r.choices[0].finish_reason == "length"
    text = r.choices[0].message.content or ""
    assert r.usage is not None and r.usage.completion_tokens == 7 == tokenizer.count(text)
    assert r.usage.prompt_tokens > 3 and r.usage.total_tokens == r.usage.prompt_tokens + 7


async def test_chat_streaming_with_usage(client: openai.AsyncOpenAI) -> None:
    stream = await client.chat.completions.create(
        model="sim-model", max_tokens=9, seed=2, stream=True, stream_options={"include_usage": True},
        messages=[{"role": "user", "content": "Stream please"}])
    parts, usage, finish = [], None, None
    async for chunk in stream:
        if chunk.usage:
            usage = chunk.usage
        for choice in chunk.choices:
            parts.append(choice.delta.content or "")
            finish = choice.finish_reason or finish
    assert usage is not None and usage.completion_tokens == 9
    assert tokenizer.count("".join(parts)) == 9 and finish == "length"


async def test_same_seed_same_text(client: openai.AsyncOpenAI) -> None:
    kwargs = dict(model="sim-model", prompt="Once upon a time", max_tokens=20, seed=42)
    a = await client.completions.create(**kwargs)  # type: ignore[call-overload]
    b = await client.completions.create(**kwargs)  # type: ignore[call-overload]
    assert a.choices[0].text == b.choices[0].text and a.choices[0].text


async def test_completions_streaming_and_not(client: openai.AsyncOpenAI) -> None:
    full = await client.completions.create(model="sim-model", prompt="abc", max_tokens=5, seed=3)
    assert full.usage is not None and full.usage.completion_tokens == 5
    stream = await client.completions.create(model="sim-model", prompt="abc", max_tokens=5, seed=3,
                                             stream=True, stream_options={"include_usage": True})
    texts, usage = [], None
    async for chunk in stream:
        usage = chunk.usage or usage
        texts += [c.text for c in chunk.choices]
    assert "".join(texts) == full.choices[0].text
    assert usage is not None and usage.prompt_tokens == full.usage.prompt_tokens
    assert usage.completion_tokens == 5 == tokenizer.count("".join(texts))


async def test_too_long_prompt_is_bad_request(client: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.BadRequestError, match="maximum context length"):
        await client.completions.create(model="sim-model", prompt="word " * 9000, max_tokens=4)


async def test_unknown_model_is_not_found(client: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.NotFoundError, match="does not exist"):
        await client.completions.create(model="other", prompt="x", max_tokens=1)


async def test_models_lists_the_served_model(client: openai.AsyncOpenAI) -> None:
    models = await client.models.list()
    assert [m.id for m in models.data] == ["sim-model"]


async def test_ignore_eos_without_max_tokens_runs_to_max_model_len() -> None:
    """vLLM's extra sampling params, passed as the client passes them (``extra_body``)."""
    async with run_engine(SimConfig(model="m", fixed_ttft_ms=1, fixed_tpot_ms=0.2, max_model_len=96)) as server:
        client = openai.AsyncOpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0)
        r = await client.completions.create(model="m", prompt="Once upon a time", seed=4,
                                            extra_body={"ignore_eos": True})
        assert r.usage is not None and r.choices[0].finish_reason == "length"
        assert r.usage.completion_tokens == 96 - r.usage.prompt_tokens == tokenizer.count(r.choices[0].text)
        stream = await client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "hi"}], seed=4, stream=True,
            stream_options={"include_usage": True}, extra_body={"ignore_eos": True})
        parts, usage, finish = [], None, None
        async for chunk in stream:
            usage = chunk.usage or usage
            for choice in chunk.choices:
                parts.append(choice.delta.content or "")
                finish = choice.finish_reason or finish
        assert usage is not None and finish == "length"
        assert usage.completion_tokens == 96 - usage.prompt_tokens == tokenizer.count("".join(parts))
        capped = await client.completions.create(model="m", prompt="x", max_tokens=7,
                                                 extra_body={"ignore_eos": True})
        assert capped.usage is not None and capped.usage.completion_tokens == 7


async def test_min_tokens_is_the_floor_of_an_eos_stop() -> None:
    """Without max_tokens, the drawn EOS length lies in [min_tokens, --default-max-tokens]."""
    config = SimConfig(model="m", fixed_ttft_ms=1, fixed_tpot_ms=0.2, default_max_tokens=40)
    async with run_engine(config) as server:
        client = openai.AsyncOpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0)
        for seed in range(8):
            r = await client.completions.create(model="m", prompt="Once upon a time", seed=seed,
                                                extra_body={"min_tokens": 30})
            assert r.usage is not None and r.choices[0].finish_reason == "stop"
            assert 30 <= r.usage.completion_tokens <= 40
            assert r.usage.completion_tokens == tokenizer.count(r.choices[0].text)
        floor = await client.completions.create(model="m", prompt="Once upon a time", seed=1,
                                                extra_body={"min_tokens": 40})
        assert floor.usage is not None and floor.usage.completion_tokens == 40


async def test_min_tokens_holds_back_an_early_stop_string(client: openai.AsyncOpenAI) -> None:
    full = await client.completions.create(model="sim-model", prompt="Once upon a time", max_tokens=60, seed=5)
    words = [w for w in full.choices[0].text.split(" ") if w]
    stop = next(" " + w for i, w in enumerate(words[1:10], 1) if w in words[12:])  # early and late
    early = await client.completions.create(model="sim-model", prompt="Once upon a time", max_tokens=60, seed=5,
                                            stop=[stop])
    late = await client.completions.create(model="sim-model", prompt="Once upon a time", max_tokens=60, seed=5,
                                           stop=[stop], extra_body={"min_tokens": 10})
    assert early.usage is not None and late.usage is not None
    assert early.choices[0].finish_reason == late.choices[0].finish_reason == "stop"
    assert early.usage.completion_tokens < 10 <= late.usage.completion_tokens
    assert full.choices[0].text.startswith(late.choices[0].text)
    assert late.usage.completion_tokens == tokenizer.count(late.choices[0].text)
