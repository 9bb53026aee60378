"""Request parsing, body rewriting and SSE splitting: pure functions of the proxy."""

from __future__ import annotations

import json

import pytest

from kubellm.gateway.errors import BadRequestError
from kubellm.gateway.payload import parse_request
from kubellm.gateway.proxy import build_outgoing
from kubellm.gateway.sse import EventSplitter, event_json, is_done


@pytest.mark.parametrize(
    ("kind", "body", "message"),
    [
        ("chat", b"nope", "not valid JSON"),
        ("chat", b"[1]", "JSON object"),
        ("chat", b'{"model": 3}', "'model'"),
        ("chat", b'{"model": "m", "messages": []}', "'messages'"),
        ("chat", b'{"model": "m", "messages": [{"content": "x"}]}', "'role'"),
        ("chat", b'{"model": "m", "messages": [{"role": "user"}], "stream": 1}', "'stream'"),
        ("chat", b'{"model": "m", "messages": [{"role": "user"}], "max_tokens": -1}', "'max_tokens'"),
        ("completions", b'{"model": "m", "prompt": {"a": 1}}', "'prompt'"),
        ("embeddings", b'{"model": "m"}', "'input'"),
    ],
)
def test_bad_bodies_name_the_field(kind, body, message):
    with pytest.raises(BadRequestError, match=message):
        parse_request(kind, body)


def test_prompt_text_includes_roles():
    a = parse_request("chat", b'{"model": "m", "messages": [{"role": "system", "content": "x"}]}')
    b = parse_request("chat", b'{"model": "m", "messages": [{"role": "user", "content": "x"}]}')
    assert a.prompt_text != b.prompt_text and "x" in a.prompt_text


def test_outgoing_rewrites_only_what_it_must():
    raw = b'{"model": "alias", "prompt": "hi", "custom": 1}'
    p = parse_request("completions", raw)
    assert build_outgoing(p, "alias", {}, raw=raw).body is raw
    renamed = json.loads(build_outgoing(p, "real", {}, raw=raw).body)
    assert renamed == {"model": "real", "prompt": "hi", "custom": 1}
    s = parse_request("completions", b'{"model": "m", "prompt": "hi", "stream": true}')
    out = build_outgoing(s, "m", {})
    assert out.injected_usage and json.loads(out.body)["stream_options"] == {"include_usage": True}
    asked = parse_request("completions",
                          b'{"model": "m", "prompt": "hi", "stream": true, "stream_options": {"include_usage": true}}')
    assert not build_outgoing(asked, "m", {}).injected_usage


def test_event_splitter_keeps_partial_events():
    sp = EventSplitter()
    assert sp.feed(b'data: {"a": 1}\n\ndata: {"b"') == [b'data: {"a": 1}\n\n']
    assert sp.feed(b': 2}\n\ndata: [DONE]\n\n') == [b'data: {"b": 2}\n\n', b"data: [DONE]\n\n"]
    assert event_json(b'data: {"b": 2}\n\n') == {"b": 2} and is_done(b"data: [DONE]\n\n")
    with pytest.raises(ValueError):
        EventSplitter(max_pending=10).feed(b"x" * 11)
