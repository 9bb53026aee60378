"""Deterministic output text: the same seed (and prompt) gives the same tokens.

Output is drawn from a fixed list of short English words, each of which is exactly one
token of :mod:`kubellm.sim.tokenizer` (a leading space and at most three letters), so the
text a client receives re-tokenizes to the same count the engine reported. Each word's
id, text and JSON-escaped form are computed once, so streaming does no per-token
encoding work.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass

from kubellm.sim import tokenizer

_WORDS = (
    "the of and to in is it you he was for on are as with his they at be this have"
    " from or one had by but not what all we can out"
    " use an each she do how if up so her two may see way who its now my has let did get"
    " own say too new set any day top run old yes via far few big end put low key mix"
).split()
_FIRST_WORD = "The"


@dataclass(frozen=True, slots=True)
class OutputVocab:
    """Token ids, texts and JSON-escaped texts of the output words, index-aligned."""

    ids: tuple[int, ...]
    texts: tuple[str, ...]
    json_texts: tuple[bytes, ...]


def build_vocab() -> OutputVocab:
    words = [_FIRST_WORD] + [" " + w for w in dict.fromkeys(_WORDS) if len(w) <= 3]
    ids = []
    for word in words:
        (token_id,) = tokenizer.encode(word)  # each word is one token by construction
        ids.append(token_id)
    return OutputVocab(tuple(ids), tuple(words),
                       tuple(json.dumps(w).encode() for w in words))


def draw_tokens(vocab: OutputVocab, n: int, seed: int | None, prompt_len: int) -> list[int]:
    """Indexes into *vocab* of *n* output tokens; the first is the capitalised word.

    With a seed the result depends only on (seed, prompt_len, n); without one it is
    random, as sampling is in vLLM.
    """
    rng = random.Random(None if seed is None else (seed << 20) ^ prompt_len)
    if n <= 0:
        return []
    return [0] + rng.choices(range(1, len(vocab.ids)), k=n - 1)


def draw_eos_length(seed: int | None, prompt_len: int, cap: int, floor: int) -> int:
    """Length at which a request without ``max_tokens`` 'meets EOS' (at least *floor*)."""
    rng = random.Random(None if seed is None else (seed << 21) ^ prompt_len ^ 0x5EED)
    low = min(max(1, floor), cap)
    return rng.randint(low, cap)
