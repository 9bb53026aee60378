"""Parsing of OpenAI-style server-sent events, one ``data:`` line at a time (pure)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class StreamEvent:
    """What one SSE line carried: generated text, token usage, an error, or the end."""

    text: str = ""
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    error: str | None = None
    done: bool = False


_DONE = StreamEvent(done=True)


def parse_line(line: bytes) -> StreamEvent | None:
    """The event on *line*, or None for blank lines, comments and other SSE fields."""
    if not line.startswith(b"data:"):
        return None
    payload = line[5:].strip()
    if payload == b"[DONE]":
        return _DONE
    try:
        chunk = json.loads(payload)
    except ValueError:
        return StreamEvent(error=f"unparseable stream chunk: {payload[:80]!r}")
    if not isinstance(chunk, dict):
        return StreamEvent(error="stream chunk is not a JSON object")
    return _event(chunk)


def _event(chunk: dict[str, Any]) -> StreamEvent:
    if "error" in chunk:
        return StreamEvent(error=_error_message(chunk["error"]))
    usage = chunk.get("usage") or {}
    return StreamEvent(
        text=_text(chunk.get("choices") or []),
        prompt_tokens=usage.get("prompt_tokens"),
        completion_tokens=usage.get("completion_tokens"),
    )


def _text(choices: list[Any]) -> str:
    """Generated text of a chat (``delta.content``) or completion (``text``) chunk."""
    if not choices or not isinstance(choices[0], dict):
        return ""
    choice = choices[0]
    delta = choice.get("delta")
    if isinstance(delta, dict):
        return str(delta.get("content") or "")
    return str(choice.get("text") or "")


def _error_message(error: Any) -> str:
    if isinstance(error, dict):
        return str(error.get("message") or error)
    return str(error)
