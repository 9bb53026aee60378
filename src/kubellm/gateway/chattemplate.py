"""Hugging Face chat templates rendered as ``transformers`` renders them, for vLLM's prompts.

vLLM's chat endpoint renders the model's template with ``add_generation_prompt`` (default
true) and then tokenizes the text without adding special tokens (the template writes them).
The Jinja environment is transformers': sandboxed and immutable, ``trim_blocks`` and
``lstrip_blocks``, the ``tojson`` filter and the ``raise_exception`` and ``strftime_now``
globals. Message content given as a list of parts becomes the text parts joined by
newlines (vLLM's "string" content format, what text-only templates expect).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment


class TemplateError(ValueError):
    """A template that does not compile, or that refuses the messages (``raise_exception``)."""


def _raise_exception(message: str) -> None:
    raise TemplateError(message)


def _tojson(value: Any, ensure_ascii: bool = False, indent: int | None = None,
            separators: tuple[str, str] | None = None, sort_keys: bool = False) -> str:
    return json.dumps(value, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def _strftime_now(fmt: str) -> str:
    return datetime.now().strftime(fmt)


def _environment() -> ImmutableSandboxedEnvironment:
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols"])
    env.filters["tojson"] = _tojson
    env.globals["raise_exception"] = _raise_exception
    env.globals["strftime_now"] = _strftime_now
    return env


def _flatten(message: dict[str, Any]) -> dict[str, Any]:
    content = message.get("content")
    if isinstance(content, list):
        texts = [p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str)]
        return {**message, "content": "\n".join(texts)}
    return message


class ChatTemplate:
    """One compiled template plus the special tokens it may refer to."""

    def __init__(self, source: str, special_tokens: dict[str, str]) -> None:
        try:
            self._template = _environment().from_string(source)
        except jinja2.TemplateError as exc:
            raise TemplateError(f"chat template does not compile: {exc}") from exc
        self._special = special_tokens

    def render(self, messages: list[dict[str, Any]], body: dict[str, Any]) -> str:
        """The prompt text vLLM would build for a chat request *body* with these *messages*."""
        kwargs = body.get("chat_template_kwargs")
        context: dict[str, Any] = {
            **self._special, **(kwargs if isinstance(kwargs, dict) else {}),
            "messages": [_flatten(m) for m in messages],
            "add_generation_prompt": body.get("add_generation_prompt", True),
            "continue_final_message": body.get("continue_final_message", False),
            "tools": body.get("tools"), "documents": body.get("documents"),
        }
        try:
            return self._template.render(**context)
        except jinja2.TemplateError as exc:
            raise TemplateError(f"chat template failed: {exc}") from exc
