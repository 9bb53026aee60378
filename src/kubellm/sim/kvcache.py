"""A paged KV cache with automatic prefix caching, as vLLM V1's block pool (pure).

The cache holds ``num_blocks`` blocks of ``block_size`` tokens. A full block is named by
vLLM's chained block hash (:mod:`kubellm.kvhash`), in the 64-bit form vLLM's KV events
publish, so two requests share a block only when their whole prefixes up to and including
it are equal, and a router computing the same hashes matches the events. Blocks whose
reference count drops to zero go to the tail of a free queue but keep their hash:
they can still be hit until they are taken for a new allocation, which evicts the
least recently freed one first (LRU). A request's blocks are freed tail first, so the
end of a prompt is evicted before its shared beginning.

Changes are recorded as events (``BlockStored``/``BlockRemoved`` shapes of vLLM's
``vllm/distributed/kv_events.py``) in ``events`` when it is a list, for the KV-event
publisher to drain.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

@dataclass(frozen=True, slots=True)
class BlockStored:
    block_hashes: list[int]
    parent_block_hash: int | None
    token_ids: list[int]
    block_size: int
    lora_id: int | None


@dataclass(frozen=True, slots=True)
class BlockRemoved:
    block_hashes: list[int]


@dataclass(frozen=True, slots=True)
class AllBlocksCleared:
    pass


KvEvent = BlockStored | BlockRemoved | AllBlocksCleared


class BlockPool:
    """Blocks with reference counts, a hash index and an LRU queue of free blocks."""

    def __init__(self, num_blocks: int, block_size: int, enable_caching: bool = True,
                 events: list[KvEvent] | None = None) -> None:
        self.num_blocks = num_blocks
        self.block_size = block_size
        self.enable_caching = enable_caching
        self.events = events
        self._ref = [0] * num_blocks
        self._hash: list[int | None] = [None] * num_blocks
        self._free: OrderedDict[int, None] = OrderedDict.fromkeys(range(num_blocks))
        self._cached: dict[int, int] = {}

    @property
    def num_free(self) -> int:
        return len(self._free)

    def usage(self) -> float:
        """Share of blocks in use by requests (vLLM's ``kv_cache_usage_perc``)."""
        return 1.0 - len(self._free) / self.num_blocks

    def lookup(self, hashes: Sequence[int]) -> list[int]:
        """Blocks of the longest cached prefix of *hashes*."""
        if not self.enable_caching:
            return []
        hit = []
        for h in hashes:
            block = self._cached.get(h)
            if block is None:
                break
            hit.append(block)
        return hit

    def num_reclaimable(self, blocks: Sequence[int]) -> int:
        """How many of *blocks* sit in the free queue (taking them shrinks it)."""
        return sum(1 for b in blocks if self._ref[b] == 0)

    def touch(self, blocks: Sequence[int]) -> None:
        """Take a reference on cached *blocks* (a prefix hit)."""
        for b in blocks:
            if self._ref[b] == 0:
                del self._free[b]
            self._ref[b] += 1

    def allocate(self, n: int) -> list[int] | None:
        """*n* fresh blocks, evicting least recently freed cached ones; None if too few."""
        if n > len(self._free):
            return None
        out = []
        for _ in range(n):
            b, _none = self._free.popitem(last=False)
            self._evict(b)
            self._ref[b] = 1
            out.append(b)
        return out

    def _evict(self, b: int) -> None:
        h = self._hash[b]
        if h is None:
            return
        self._hash[b] = None
        if self._cached.get(h) == b:
            del self._cached[h]
            if self.events is not None:
                self.events.append(BlockRemoved([h]))

    def cache_full(self, b: int, h: int, parent: int | None, tokens: list[int], lora_id: int | None) -> None:
        """Name a block that just became full so later requests can hit it."""
        if not self.enable_caching or self._hash[b] is not None or h in self._cached:
            return
        self._hash[b] = h
        self._cached[h] = b
        if self.events is not None:
            self.events.append(BlockStored([h], parent, tokens, self.block_size, lora_id))

    def free(self, blocks: Sequence[int]) -> None:
        """Drop one reference on each of *blocks*, tail first (evicted before the head)."""
        for b in reversed(blocks):
            self._ref[b] -= 1
            if self._ref[b] == 0:
                self._free[b] = None

    def reset(self) -> None:
        """Forget every cached hash (vLLM's prefix-cache reset); blocks in use keep working."""
        for b in range(self.num_blocks):
            self._hash[b] = None
        self._cached.clear()
        if self.events is not None:
            self.events.append(AllBlocksCleared())
