"""OpenAI request bodies as the gateway reads them: validated just enough to route.

Bodies stay plain dicts (unknown fields pass through to the engine untouched); this
module checks the fields routing depends on and extracts the prompt text whose blocks
drive prefix affinity.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import orjson

from kubellm.gateway.errors import BadRequestError

Kind = Literal["chat", "completions", "embeddings"]


@dataclass(slots=True)
class ParsedRequest:
    kind: Kind
    body: dict[str, Any]
    model: str
    stream: bool
    prompt_text: str
    max_tokens: int | None
    raw: bytes | None = None  # the client's body, forwarded as is when nothing is rewritten


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # multi-part content: text parts only
        return "".join(p.get("text", "") for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
    return ""


def _chat_text(messages: Any) -> str:
    if not isinstance(messages, list) or not messages:
        raise BadRequestError("'messages' must be a non-empty array")
    parts: list[str] = []
    for m in messages:
        if not isinstance(m, dict) or not isinstance(m.get("role"), str):
            raise BadRequestError("each message must be an object with a string 'role'")
        # role and separators are part of the text so "user: X" and "system: X" differ
        parts.append(f"\x1e{m['role']}\x1f{_content_text(m.get('content'))}")
    return "".join(parts)


def _prompt_text(prompt: Any, field: str) -> str:
    if isinstance(prompt, str):
        return prompt
    if isinstance(prompt, list) and prompt:
        if all(isinstance(p, str) for p in prompt):
            return str(prompt[0])
        if all(isinstance(p, int) and not isinstance(p, bool) for p in prompt):
            return " ".join(map(str, prompt))
        if all(isinstance(p, list) for p in prompt):
            return " ".join(map(str, prompt[0]))
    raise BadRequestError(f"'{field}' must be a string, an array of strings or an array of token ids")


def _max_tokens(body: dict[str, Any]) -> int | None:
    value = body.get("max_completion_tokens", body.get("max_tokens"))
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise BadRequestError("'max_tokens' must be a non-negative integer")
    return value


def parse_request(kind: Kind, raw: bytes) -> ParsedRequest:
    """Parse and check *raw*; ``BadRequestError`` names the offending field."""
    try:
        body = orjson.loads(raw)  # several times json's speed on request-sized bodies (docs/gateway.md)
    except (ValueError, RecursionError) as exc:
        raise BadRequestError("request body is not valid JSON") from exc
    if not isinstance(body, dict):
        raise BadRequestError("request body must be a JSON object")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise BadRequestError("'model' must be a non-empty string")
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise BadRequestError("'stream' must be a boolean")
    if kind == "chat":
        text = _chat_text(body.get("messages"))
    elif kind == "completions":
        text = _prompt_text(body.get("prompt"), "prompt")
    else:
        text = _prompt_text(body.get("input"), "input")
        stream = False
    return ParsedRequest(kind, body, model, stream, text, _max_tokens(body), raw)
