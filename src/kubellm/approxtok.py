"""A fast, deterministic, reversible tokenizer that approximates a BPE vocabulary.

It is the simulator's "model tokenizer" (``kubellm.sim.tokenizer``), and lives outside the
simulator so that the gateway can reproduce a simulated engine's token ids, chat template
included (:func:`render_chat`), without importing the simulator.

Real tokenizers (Llama 3, Qwen) give about 4 characters of English per token: most
common words with their leading space are one token, longer words split in pieces.
This one splits text like GPT-2's pre-tokenizer (an optional leading space, then a run
of letters, of digits, or of other symbols) and cuts each piece into chunks of at most
4 UTF-8 bytes. A chunk's id is its bytes read as a big-endian integer behind a ``0x01``
marker byte, so ids are stable across processes, ``detokenize(tokenize(t)) == t``, and
a router can compute the same ids (and so the same prefix-block hashes) without
asking the engine. Ids are large integers (up to 2**40), not indexes in a vocabulary:
only their equality matters to the cost model and to prefix caching.

Counts: English prose gives about 3.5 to 4.5 characters per token, within ~20% of
Llama 3's tokenizer; code and non-Latin text give more tokens than a real tokenizer.
"""

from __future__ import annotations

import functools
import re
from typing import Any

_PIECES = re.compile(r" ?[^\W\d_]+| ?\d+| ?[^\s\w]+|\s+(?!\S)|\s+|_+")
_CHUNK = 4


def _chunk_id(chunk: bytes) -> int:
    return int.from_bytes(b"\x01" + chunk, "big")


@functools.lru_cache(maxsize=1 << 16)
def _piece_ids(piece: str) -> tuple[int, ...]:
    """Ids of one pre-token; memoised because prose repeats the same words."""
    raw = piece.encode("utf-8")
    if len(raw) <= _CHUNK:
        return (_chunk_id(raw),)
    return tuple(_chunk_id(raw[i:i + _CHUNK]) for i in range(0, len(raw), _CHUNK))


def encode(text: str) -> list[int]:
    """Token ids of *text*."""
    ids: list[int] = []
    extend = ids.extend
    for piece in _PIECES.findall(text):
        extend(_piece_ids(piece))
    return ids


def count(text: str) -> int:
    """Number of tokens of *text* (same as ``len(encode(text))``)."""
    return sum(len(_piece_ids(piece)) for piece in _PIECES.findall(text))


def token_bytes(token_id: int) -> bytes:
    """The bytes one id stands for; ``ValueError`` when the id was not made by :func:`encode`."""
    if token_id < 256 or token_id >= 1 << 40:
        raise ValueError(f"token id {token_id} is not a simulator token id")
    raw = token_id.to_bytes((token_id.bit_length() + 7) // 8, "big")
    if raw[0] != 1:
        raise ValueError(f"token id {token_id} is not a simulator token id")
    return raw[1:]


def decode(ids: list[int]) -> str:
    """Text of *ids*; chunks cut inside a UTF-8 character are joined before decoding."""
    return b"".join(token_bytes(i) for i in ids).decode("utf-8", errors="replace")


CHAT_TEMPLATE_TURN = "<|{role}|>\n{content}\n"
CHAT_GENERATION_PROMPT = "<|assistant|>\n"


def render_chat(messages: Any) -> str:
    """The prompt text of a chat: a role-tagged turn per message, then the generation prompt.

    ``ValueError`` names what is wrong with *messages* (the simulator answers it with a 400).
    """
    if not isinstance(messages, list) or not messages:
        raise ValueError("'messages' must be a non-empty list of messages")
    parts = []
    for i, msg in enumerate(messages):
        if not isinstance(msg, dict) or "role" not in msg:
            raise ValueError(f"messages[{i}] must be an object with a 'role'")
        parts.append(CHAT_TEMPLATE_TURN.format(role=msg["role"], content=_content_text(msg.get("content"), i)))
    parts.append(CHAT_GENERATION_PROMPT)
    return "".join(parts)


def _content_text(content: Any, i: int) -> str:
    if content is None or isinstance(content, str):
        return content or ""
    if isinstance(content, list):
        texts = [p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text"]
        return "\n".join(texts)
    raise ValueError(f"messages[{i}].content must be a string or a list of parts")


def completion_prompt_ids(prompt: Any) -> list[int]:
    """Token ids of a completions ``prompt``: a string, or a list of token ids (n=1 only)."""
    if isinstance(prompt, str):
        return encode(prompt)
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], (str, list)):
        return completion_prompt_ids(prompt[0])
    if isinstance(prompt, list) and prompt and all(isinstance(t, int) and not isinstance(t, bool) for t in prompt):
        return list(prompt)
    raise ValueError("'prompt' must be a string or a list of token ids (batched prompts are not simulated)")
