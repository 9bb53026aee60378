"""The real `openai` client against the simulator: chat and completions, streamed or not."""

from __future__ import annotations

import openai
import pytest

from kubellm.sim import Fleet, tokenizer


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


async def test_too_long_prompt_is_bad_request(client: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.BadRequestError, match="maximum context length"):
        await client.completions.create(model="sim-model", prompt="word " * 9000, max_tokens=4)


async def test_unknown_model_is_not_found(client: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.NotFoundError, match="does not exist"):
        await client.completions.create(model="other", prompt="x", max_tokens=1)


async def test_models_lists_the_served_model(client: openai.AsyncOpenAI) -> None:
    models = await client.models.list()
    assert [m.id for m in models.data] == ["sim-model"]
