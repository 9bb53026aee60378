"""Chained block hashes of a prompt, as vLLM's ``get_request_block_hasher`` computes them.

Only full blocks are hashed. Each block's extra keys (None when there are none) are, in
order: the LoRA adapter ``("lora", name, path)`` on every block, one ``("mm", identifier,
offset_in_block)`` per multimodal item overlapping the block, and ``("cache_salt", salt)``
on the first block only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from kubellm.kvhash.algorithms import HashAlgo, HashFn, hash_function
from kubellm.kvhash.seed import none_hash

_MASK64 = (1 << 64) - 1


@dataclass(frozen=True, slots=True)
class MmSpan:
    """A multimodal item: its hash (vLLM's ``identifier``) and where its placeholder tokens sit."""

    identifier: str
    offset: int
    length: int


@dataclass(frozen=True, slots=True)
class ExtraKeys:
    """What besides the tokens names a request's blocks (vLLM's block-hash extra keys)."""

    lora_name: str | None = None
    lora_path: str = ""
    cache_salt: str | None = None
    mm: tuple[MmSpan, ...] = ()

    def for_block(self, start: int, end: int) -> tuple[Any, ...] | None:
        keys: list[Any] = []
        if self.lora_name is not None:
            keys.append(("lora", self.lora_name, self.lora_path))
        keys.extend(("mm", m.identifier, m.offset - start) for m in self.mm
                    if m.offset < end and m.offset + m.length > start)
        if start == 0 and self.cache_salt:
            keys.append(("cache_salt", self.cache_salt))
        return tuple(keys) if keys else None


NO_EXTRA_KEYS = ExtraKeys()


def event_hash(block_hash: bytes) -> int:
    """The 64-bit integer a KV event carries for *block_hash* (its last 8 bytes, big-endian)."""
    return int.from_bytes(block_hash, "big") & _MASK64


class BlockHasher:
    """Block hashes for one engine configuration: algorithm, seed and block size."""

    def __init__(self, algo: HashAlgo, seed: str, block_size: int) -> None:
        if block_size < 1:
            raise ValueError(f"block size must be at least 1, got {block_size}")
        self.algo, self.seed, self.block_size = algo, seed, block_size
        self._fn: HashFn = hash_function(algo)
        self.root = none_hash(algo, seed)

    def chain(self, parent: bytes | None, tokens: Sequence[int], extra: tuple[Any, ...] | None) -> bytes:
        """One block's hash (vLLM's ``hash_block_tokens``); None parent: the first block."""
        return self._fn((parent or self.root, tuple(tokens), extra))

    def hashes(self, token_ids: Sequence[int], extra: ExtraKeys = NO_EXTRA_KEYS,
               parent: bytes | None = None, start_block: int = 0) -> list[bytes]:
        """Hashes of the full blocks of *token_ids* from block *start_block* on, chained to *parent*."""
        bs, out = self.block_size, []
        plain = extra.lora_name is None and not extra.mm and not extra.cache_salt
        for start in range(start_block * bs, len(token_ids) - bs + 1, bs):
            keys = None if plain else extra.for_block(start, start + bs)
            parent = self.chain(parent, token_ids[start:start + bs], keys)
            out.append(parent)
        return out

    def event_hashes(self, token_ids: Sequence[int], extra: ExtraKeys = NO_EXTRA_KEYS) -> list[int]:
        """What the engine's KV events carry for this prompt's full blocks."""
        return [event_hash(h) for h in self.hashes(token_ids, extra)]
