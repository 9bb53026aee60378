"""OpenAI request parsing and response encoding, as vLLM's OpenAI server does them.

Pure functions: a JSON body in, a :class:`Plan` (what to generate) or a
:class:`~kubellm.sim.errors.RequestError` out; responses and SSE chunks out as bytes.
Streaming chunks are built from per-request prefix/suffix byte strings and the
pre-escaped token texts of :mod:`kubellm.sim.textgen`, so a token costs one bytes join.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

from kubellm import approxtok
from kubellm.sim import textgen, tokenizer
from kubellm.sim.errors import RequestError



@dataclass(slots=True)
class Plan:
    """What one request will produce: prompt tokens, output tokens, how it ends."""

    chat: bool
    model: str
    prompt_ids: list[int]
    out_idx: list[int]  # indexes into the output vocabulary
    finish_reason: str
    stop_reason: str | None
    stream: bool
    include_usage: bool
    kv_transfer_params: dict[str, Any] | None
    request_id: str
    created: int


def error_body(err: RequestError) -> bytes:
    """vLLM's error body (``ErrorResponse`` with an ``error`` object, as OpenAI sends)."""
    return json.dumps({"error": {"message": err.message, "type": err.err_type,
                                 "param": err.param, "code": err.status}}).encode()


def render_chat(messages: Any) -> str:
    """The prompt text of a chat (:func:`kubellm.approxtok.render_chat`); bad messages are a 400."""
    try:
        return approxtok.render_chat(messages)
    except ValueError as exc:
        raise RequestError(str(exc), param="messages") from None


def completion_prompt_ids(prompt: Any) -> list[int]:
    """Token ids of a completions ``prompt``: a string, or a list of token ids (n=1 only)."""
    try:
        return approxtok.completion_prompt_ids(prompt)
    except ValueError as exc:
        raise RequestError(str(exc), param="prompt") from None


def _int_field(body: dict[str, Any], name: str, low: int) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise RequestError(f"'{name}' must be an integer >= {low}, got {value!r}", param=name)
    return value


def _stops(body: dict[str, Any]) -> list[str]:
    stop = body.get("stop")
    if stop is None:
        return []
    if isinstance(stop, str):
        return [stop] if stop else []
    if isinstance(stop, list) and all(isinstance(s, str) for s in stop):
        return [s for s in stop if s]
    raise RequestError("'stop' must be a string or a list of strings", param="stop")


def plan_request(body: Any, chat: bool, vocab: textgen.OutputVocab, max_model_len: int,
                 default_max_tokens: int) -> Plan:
    """Validate *body* and decide the output, or raise :class:`RequestError` (400)."""
    if not isinstance(body, dict):
        raise RequestError("the request body must be a JSON object")
    if (_int_field(body, "n", 1) or 1) != 1:
        raise RequestError("only n=1 is supported by the simulator", param="n")
    if chat:
        prompt_ids = tokenizer.encode(render_chat(body.get("messages")))
        max_tokens = _int_field(body, "max_completion_tokens", 1) or _int_field(body, "max_tokens", 1)
    else:
        if "prompt" not in body:
            raise RequestError("'prompt' is required", param="prompt")
        prompt_ids = completion_prompt_ids(body["prompt"])
        max_tokens = _int_field(body, "max_tokens", 1)
    _check_length(len(prompt_ids), max_tokens, max_model_len)
    seed = _int_field(body, "seed", -(2**63))
    min_tokens = _int_field(body, "min_tokens", 0) or 0
    n_out, reason = _output_length(body, len(prompt_ids), max_tokens, min_tokens, max_model_len,
                                   default_max_tokens, seed)
    out_idx = textgen.draw_tokens(vocab, n_out, seed, len(prompt_ids))
    out_idx, reason, stop_reason = _apply_stops(out_idx, vocab, _stops(body), min_tokens, reason)
    return Plan(chat=chat, model=str(body.get("model") or ""), prompt_ids=prompt_ids,
                out_idx=out_idx, finish_reason=reason, stop_reason=stop_reason,
                stream=bool(body.get("stream")), include_usage=_include_usage(body),
                kv_transfer_params=_kv_params(body),
                request_id=("chatcmpl-" if chat else "cmpl-") + uuid.uuid4().hex,
                created=int(time.time()))


def _check_length(prompt_len: int, max_tokens: int | None, max_model_len: int) -> None:
    if prompt_len == 0:
        raise RequestError("The prompt is empty; send at least one token", param="prompt")
    if prompt_len >= max_model_len:
        raise RequestError(
            f"This model's maximum context length is {max_model_len} tokens. However, your request has "
            f"{prompt_len} input tokens. Please reduce the length of the input messages.", param="messages")
    if max_tokens is not None and prompt_len + max_tokens > max_model_len:
        raise RequestError(
            f"This model's maximum context length is {max_model_len} tokens. However, you requested "
            f"{prompt_len + max_tokens} tokens ({prompt_len} in the messages, {max_tokens} in the "
            f"completion). Please reduce the length of the messages or completion.", param="max_tokens")


def _output_length(body: dict[str, Any], prompt_len: int, max_tokens: int | None, min_tokens: int,
                   max_model_len: int, default_max: int, seed: int | None) -> tuple[int, str]:
    """``max_tokens`` set: exactly that many ('length'); unset: an EOS length drawn from the seed."""
    room = max_model_len - prompt_len
    if max_tokens is not None:
        return max_tokens, "length"
    if body.get("ignore_eos"):
        return room, "length"
    return textgen.draw_eos_length(seed, prompt_len, min(default_max, room), min_tokens), "stop"


def _apply_stops(out_idx: list[int], vocab: textgen.OutputVocab, stops: list[str], min_tokens: int,
                 reason: str) -> tuple[list[int], str, str | None]:
    """Cut the output before the first stop string (after ``min_tokens``), at a token boundary."""
    if not stops:
        return out_idx, reason, None
    text, ends = "", []
    for i in out_idx:
        text += vocab.texts[i]
        ends.append(len(text))
    floor = ends[min_tokens - 1] if 0 < min_tokens <= len(ends) else 0
    hits = [(text.find(s, floor), s) for s in stops]
    hits = [(pos, s) for pos, s in hits if pos >= 0]
    if not hits:
        return out_idx, reason, None
    pos, stop = min(hits)
    keep = max(sum(1 for e in ends if e <= pos), min_tokens, 1)  # an engine emits at least one token
    return out_idx[:keep], "stop", stop


def _include_usage(body: dict[str, Any]) -> bool:
    opts = body.get("stream_options")
    return isinstance(opts, dict) and bool(opts.get("include_usage"))


def _kv_params(body: dict[str, Any]) -> dict[str, Any] | None:
    params = body.get("kv_transfer_params")
    if params is None:
        return None
    if not isinstance(params, dict):
        raise RequestError("'kv_transfer_params' must be an object", param="kv_transfer_params")
    return params


def usage(prompt_tokens: int, completion_tokens: int, cached: int) -> dict[str, Any]:
    return {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens + completion_tokens,
            "completion_tokens": completion_tokens, "prompt_tokens_details": {"cached_tokens": cached}}


def full_response(plan: Plan, model: str, text: str, n_out: int, cached: int,
                  kv_out: dict[str, Any] | None) -> bytes:
    """The body of a non-streamed response."""
    if plan.chat:
        choice: dict[str, Any] = {"index": 0, "message": {"role": "assistant", "content": text,
                                                          "tool_calls": []}}
    else:
        choice = {"index": 0, "text": text}
    choice.update(logprobs=None, finish_reason=plan.finish_reason, stop_reason=plan.stop_reason)
    body = {"id": plan.request_id, "object": "chat.completion" if plan.chat else "text_completion",
            "created": plan.created, "model": model, "choices": [choice],
            "usage": usage(len(plan.prompt_ids), n_out, cached), "kv_transfer_params": kv_out}
    return json.dumps(body).encode()


class ChunkEncoder:
    """SSE chunks of one streamed response, from byte templates fixed at the start."""

    def __init__(self, plan: Plan, model: str, vocab: textgen.OutputVocab) -> None:
        self._plan = plan
        self._vocab = vocab
        obj = "chat.completion.chunk" if plan.chat else "text_completion"
        head = json.dumps({"id": plan.request_id, "object": obj, "created": plan.created, "model": model})
        self._head = b"data: " + head[:-1].encode() + b',"choices":[{"index":0,'
        if plan.chat:
            self._pre = self._head + b'"delta":{"content":'
            self._post = b'},"logprobs":null,"finish_reason":null}]}\n\n'
        else:
            self._pre = self._head + b'"text":'
            self._post = b',"logprobs":null,"finish_reason":null,"stop_reason":null}]}\n\n'
        self._model_head = head

    def role_chunk(self) -> bytes:
        """The first chat chunk, which carries only the assistant role."""
        return self._head + b'"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]}\n\n'

    def tokens(self, start: int, stop: int) -> bytes:
        """Chunks for output tokens ``start`` up to ``stop`` (exclusive), one per token."""
        texts, pre, post = self._vocab.json_texts, self._pre, self._post
        idx = self._plan.out_idx
        return b"".join([pre + texts[idx[i]] + post for i in range(start, stop)])

    def final(self, n_out: int, cached: int, kv_out: dict[str, Any] | None) -> bytes:
        """The closing chunk (finish_reason), the usage chunk if asked for, and [DONE]."""
        plan = self._plan
        fin: dict[str, Any] = {"index": 0, "logprobs": None, "finish_reason": plan.finish_reason,
                               "stop_reason": plan.stop_reason}
        if plan.chat:
            fin["delta"] = {}
        else:
            fin["text"] = ""
        base = json.loads(self._model_head)
        closing: dict[str, Any] = {**base, "choices": [fin]}
        if kv_out is not None:
            closing["kv_transfer_params"] = kv_out
        out = [b"data: " + json.dumps(closing).encode() + b"\n\n"]
        if plan.include_usage:
            usage_chunk = {**base, "choices": [], "usage": usage(len(plan.prompt_ids), n_out, cached)}
            out.append(b"data: " + json.dumps(usage_chunk).encode() + b"\n\n")
        out.append(b"data: [DONE]\n\n")
        return b"".join(out)
