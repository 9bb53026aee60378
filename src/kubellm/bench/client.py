"""One streamed chat request over aiohttp, timed into a RequestRecord.

TTFT is the time from sending to the first chunk that carries generated text; the gaps
between later text chunks are the inter-token latencies; token counts come from the
stream's ``usage`` (``stream_options.include_usage``), falling back to counting chunks.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from kubellm.bench.records import RequestRecord
from kubellm.bench.sse import StreamEvent, parse_line
from kubellm.bench.workload import RequestSpec

Clock = Callable[[], float]


@dataclass(frozen=True)
class Target:
    """The OpenAI-compatible server under test."""

    base_url: str
    model: str
    api_key: str | None = None
    timeout_s: float = 300.0
    ignore_eos: bool = False

    @property
    def chat_url(self) -> str:
        return self.base_url.rstrip("/") + "/v1/chat/completions"

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}


def chat_body(target: Target, spec: RequestSpec) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": target.model,
        "messages": list(spec.messages),
        "max_tokens": spec.max_tokens,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    if target.ignore_eos:
        body["ignore_eos"] = True  # a vLLM extension: generate exactly max_tokens
    return body


@dataclass
class _Timing:
    """Mutable state while one stream is read."""

    start: float
    first: float | None = None
    last: float | None = None
    gaps: list[float] = field(default_factory=list)
    chunks: int = 0
    prompt_tokens: int | None = None
    completion_tokens: int | None = None

    def take(self, event: StreamEvent, now: float) -> None:
        if event.text:
            if self.first is None:
                self.first = now
            else:
                assert self.last is not None
                self.gaps.append(now - self.last)
            self.last = now
            self.chunks += 1
        if event.completion_tokens is not None:
            self.completion_tokens = event.completion_tokens
            self.prompt_tokens = event.prompt_tokens


async def send(
    session: aiohttp.ClientSession,
    target: Target,
    spec: RequestSpec,
    *,
    index: int,
    origin: float,
    clock: Clock,
    scheduled_s: float | None = None,
) -> RequestRecord:
    """Send *spec*, read its stream to the end, and return what happened (never raises)."""
    timing = _Timing(start=clock())
    base = {
        "index": index,
        "scheduled_s": scheduled_s,
        "start_s": timing.start - origin,
        "conversation": spec.conversation,
        "turn": spec.turn,
    }
    try:
        error = await _stream(session, target, spec, timing, clock)
    except asyncio.TimeoutError:
        error = ("timeout", f"no complete response within {target.timeout_s:g} s")
    except aiohttp.ClientError as err:
        error = ("connection", f"{type(err).__name__}: {err}")
    end = clock()
    if error is None and timing.first is None:
        error = ("empty_response", "the stream carried no generated text")
    if error is not None:
        return RequestRecord(**base, e2e_s=end - timing.start, error=error[0], error_detail=error[1])
    return _record(base, timing, end)


def _record(base: dict[str, Any], timing: _Timing, end: float) -> RequestRecord:
    assert timing.first is not None
    return RequestRecord(
        **base,
        ttft_s=timing.first - timing.start,
        e2e_s=end - timing.start,
        itl_s=timing.gaps,
        prompt_tokens=timing.prompt_tokens,
        output_tokens=timing.completion_tokens
        if timing.completion_tokens is not None
        else timing.chunks,
    )


async def _stream(
    session: aiohttp.ClientSession,
    target: Target,
    spec: RequestSpec,
    timing: _Timing,
    clock: Clock,
) -> tuple[str, str] | None:
    """Read the response into *timing*; an (error kind, detail) pair if it failed."""
    timeout = aiohttp.ClientTimeout(total=target.timeout_s)
    async with session.post(
        target.chat_url, json=chat_body(target, spec), headers=target.headers(), timeout=timeout
    ) as response:
        if response.status != 200:
            detail = (await response.text())[:300]
            return (f"http_{response.status}", detail)
        async for line in response.content:
            now = clock()  # before parsing, so the parse cost is not charged to the server
            event = parse_line(line)
            if event is None:
                continue
            if event.error is not None:
                return ("stream_error", event.error)
            if event.done:
                break
            timing.take(event, now)
    return None
