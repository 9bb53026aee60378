"""Tokenizers that reproduce an engine's prompt token ids, for the precise-prefix scorer.

``hf``: the served model's own tokenizer (Hugging Face ``tokenizers``, from the
``tokenizer.json`` that ``kubellm pull`` put in the model directory) and its chat template
(``chat_template.jinja`` or ``tokenizer_config.json``), applied as vLLM applies them:
completions are encoded with the special tokens the tokenizer adds (BOS), chats rendered
by the template and encoded without them. ``sim``: the simulator's approximate tokenizer
(:mod:`kubellm.approxtok`), for simulated engines.

A prompt this cannot tokenize as the engine would raises :class:`PromptError`; the caller
then routes without precise hashes.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Protocol

import tokenizers

from kubellm import approxtok
from kubellm.gateway.chattemplate import ChatTemplate, TemplateError

log = logging.getLogger("kubellm.gateway.tokenizers")


class PromptError(ValueError):
    """A prompt the gateway cannot tokenize exactly as the engine does."""


class TokenizerLoadError(ValueError):
    """A tokenizer file that is missing or does not parse."""


class PromptTokenizer(Protocol):
    def chat_ids(self, body: dict[str, Any]) -> list[int]: ...

    def completion_ids(self, prompt: Any) -> list[int]: ...


def _token_ids(prompt: Any) -> list[int] | None:
    """A prompt already given as token ids (alone or as the only prompt of a batch)."""
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], list):
        prompt = prompt[0]
    if isinstance(prompt, list) and prompt and all(isinstance(t, int) and not isinstance(t, bool) for t in prompt):
        return list(prompt)
    return None


def _single_text(prompt: Any) -> str:
    if isinstance(prompt, list) and len(prompt) == 1:
        prompt = prompt[0]
    if not isinstance(prompt, str):
        raise PromptError("only a single string or token-id prompt has one block chain")
    return prompt


class SimTokenizer:
    """The simulator's tokenizer and chat template."""

    def chat_ids(self, body: dict[str, Any]) -> list[int]:
        try:
            return approxtok.encode(approxtok.render_chat(body.get("messages")))
        except ValueError as exc:
            raise PromptError(str(exc)) from exc

    def completion_ids(self, prompt: Any) -> list[int]:
        ids = _token_ids(prompt)
        return ids if ids is not None else approxtok.encode(_single_text(prompt))


class HfTokenizer:
    """A model's ``tokenizer.json`` with its chat template."""

    def __init__(self, tokenizer: tokenizers.Tokenizer, template: ChatTemplate | None) -> None:
        self._tok = tokenizer
        self._template = template

    def chat_ids(self, body: dict[str, Any]) -> list[int]:
        messages = body.get("messages")
        if self._template is None or not isinstance(messages, list):
            raise PromptError("no chat template, or no messages")
        try:
            text = self._template.render(messages, body)
        except TemplateError as exc:
            raise PromptError(str(exc)) from exc
        return list(self._tok.encode(text, add_special_tokens=False).ids)

    def completion_ids(self, prompt: Any) -> list[int]:
        ids = _token_ids(prompt)
        return ids if ids is not None else list(self._tok.encode(_single_text(prompt)).ids)


def _special_tokens(config: dict[str, Any]) -> dict[str, str]:
    """bos_token, eos_token, ... of tokenizer_config.json (plain strings or AddedToken maps)."""
    out: dict[str, str] = {}
    for key, value in config.items():
        if key.endswith("_token"):
            text = value.get("content") if isinstance(value, dict) else value
            if isinstance(text, str):
                out[key] = text
    return out


def _template_source(directory: Path, config: dict[str, Any]) -> str | None:
    jinja = directory / "chat_template.jinja"
    if jinja.is_file():
        return jinja.read_text()
    source = config.get("chat_template")
    if isinstance(source, list):  # named templates: vLLM uses "default"
        named = {t.get("name"): t.get("template") for t in source if isinstance(t, dict)}
        source = named.get("default")
    return source if isinstance(source, str) else None


def load_hf_tokenizer(directory: Path) -> HfTokenizer:
    """The tokenizer and chat template of a model directory; ``TokenizerLoadError`` names the file."""
    path = directory / "tokenizer.json"
    try:
        tok = tokenizers.Tokenizer.from_file(str(path))
    except Exception as exc:  # tokenizers raises plain Exception for both missing and malformed files
        raise TokenizerLoadError(f"{path}: {exc}") from exc
    config_path = directory / "tokenizer_config.json"
    try:
        config = json.loads(config_path.read_text()) if config_path.is_file() else {}
        source = _template_source(directory, config)
        template = None if source is None else ChatTemplate(source, _special_tokens(config))
    except (OSError, ValueError) as exc:
        raise TokenizerLoadError(f"{config_path}: {exc}") from exc
    return HfTokenizer(tok, template)


def load_tokenizer(model: str, kind: str | None, directory: Path | None) -> PromptTokenizer | None:
    """The precise tokenizer of *model*, or None (approximate routing) after one warning."""
    if kind == "sim":
        return SimTokenizer()
    if kind != "hf":
        return None
    if directory is None:
        log.warning("model %r: precise_tokenizer hf needs tokenizer_path; routing with the approximate scorer",
                    model)
        return None
    try:
        return load_hf_tokenizer(directory)
    except TokenizerLoadError as exc:
        log.warning("model %r: cannot load its tokenizer (%s); routing with the approximate scorer", model, exc)
        return None
