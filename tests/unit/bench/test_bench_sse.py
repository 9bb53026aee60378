from __future__ import annotations

import pytest

from kubellm.bench.sse import StreamEvent, parse_line


@pytest.mark.parametrize(("line", "expected"), [
    (b'data: {"choices":[{"delta":{"content":"Hi"}}]}\n', StreamEvent(text="Hi")),
    (b'data: {"choices":[{"delta":{"role":"assistant"}}]}\n', StreamEvent(text="")),
    (b'data: {"choices":[{"text":" there","index":0}]}\n', StreamEvent(text=" there")),
    (b'data: {"choices":[],"usage":{"prompt_tokens":7,"completion_tokens":3}}\n',
     StreamEvent(prompt_tokens=7, completion_tokens=3)),
    (b"data: [DONE]\n", StreamEvent(done=True)),
    (b'data: {"error":{"message":"overloaded","code":503}}\n', StreamEvent(error="overloaded")),
    (b"data: {oops\n", StreamEvent(error="unparseable stream chunk: b'{oops'")),
    (b"data: [1, 2]\n", StreamEvent(error="stream chunk is not a JSON object")),
])
def test_data_lines(line: bytes, expected: StreamEvent) -> None:
    assert parse_line(line) == expected


@pytest.mark.parametrize("line", [b"\n", b": keep-alive\n", b"event: message\n", b"id: 4\n"])
def test_other_lines_carry_no_event(line: bytes) -> None:
    assert parse_line(line) is None
