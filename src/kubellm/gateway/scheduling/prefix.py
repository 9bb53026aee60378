"""Approximate prefix-cache affinity: which endpoint recently served which prompt blocks.

A prompt is cut into fixed-size character blocks; each block's hash chains the previous
one, so equal hashes mean equal prefixes (as vLLM's block hashes do with tokens). The
index remembers, for each block hash, the endpoints it was sent to, bounded by an LRU
over block hashes so memory stays fixed whatever the traffic.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Sequence

from xxhash import xxh3_64_intdigest


def block_hashes(text: str, block_chars: int, max_blocks: int = 4096) -> tuple[int, ...]:
    """Chained hashes of the full *block_chars*-sized blocks of *text* (a partial tail is left
    out): XXH3-64 of each block seeded with the previous hash. The same in every process
    (Python's ``hash`` is salted per process), so gateway replicas agree on a prefix: the
    ``consistent-hash`` picker sends it to the same engine from any of them."""
    out: list[int] = []
    h = 0
    end = min(len(text) // block_chars, max_blocks) * block_chars
    for start in range(0, end, block_chars):
        h = xxh3_64_intdigest(text[start:start + block_chars].encode(), h)
        out.append(h)
    return tuple(out)


class PrefixIndex:
    """block hash -> endpoints that hold it, least recently used blocks evicted first."""

    def __init__(self, capacity_blocks: int = 200_000) -> None:
        self._capacity = capacity_blocks
        self._blocks: OrderedDict[int, set[str]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._blocks)

    def record(self, endpoint: str, hashes: Iterable[int]) -> None:
        """*endpoint* now holds the blocks *hashes* (it served, or reported, them)."""
        blocks = self._blocks
        for h in hashes:
            holders = blocks.get(h)
            if holders is None:
                blocks[h] = {endpoint}
            else:
                holders.add(endpoint)
                blocks.move_to_end(h)
        while len(blocks) > self._capacity:
            blocks.popitem(last=False)

    def remove(self, endpoint: str, hashes: Iterable[int]) -> None:
        """*endpoint* evicted the blocks *hashes*."""
        for h in hashes:
            holders = self._blocks.get(h)
            if holders is not None:
                holders.discard(endpoint)
                if not holders:
                    del self._blocks[h]

    def forget_endpoint(self, endpoint: str) -> None:
        for h in [h for h, holders in self._blocks.items() if endpoint in holders]:
            self.remove(endpoint, (h,))

    def matched_blocks(self, hashes: Sequence[int], endpoints: Sequence[str]) -> dict[str, int]:
        """For each endpoint, how many leading blocks of *hashes* it holds."""
        result = dict.fromkeys(endpoints, 0)
        alive = set(endpoints)
        for i, h in enumerate(hashes):
            holders = self._blocks.get(h)
            if not holders:
                break
            still = alive & holders
            for gone in alive - still:
                result[gone] = i
            alive = still
            if not alive:
                break
        else:
            for ep in alive:
                result[ep] = len(hashes)
            return result
        for ep in alive:
            result[ep] = i
        return result
