"""Approximate prefix-cache affinity: which endpoint recently served which prompt blocks.

A prompt is cut into fixed-size character blocks; each block's hash chains the previous
one, so equal hashes mean equal prefixes (as vLLM's block hashes do with tokens). The
index remembers, for each block hash, the endpoints it was sent to, bounded by an LRU
over block hashes so memory stays fixed whatever the traffic.
"""

from __future__ import annotations

import math
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


_NEVER = -2  # the stamp of a block an endpoint has no entry for: below every cutoff
HORIZON_STEP = 0.25  # how far one contradicting observation moves an endpoint's horizon


class PrefixIndex:
    """block hash -> endpoints that hold it, least recently used blocks evicted first.

    Each endpoint counts the blocks recorded there that it did not hold (its allocations); a
    block's *age* at an endpoint is how many it allocated since the block was last recorded
    there. An engine's cache holds a bounded number of blocks, so past some age a block is
    gone: :meth:`learn_horizon` takes what the engine reported cached for a routed request and
    moves the endpoint's *horizon* (the age past which a block counts as evicted; unbounded
    until an engine contradicts the index) towards the ages that were, and were not, held."""

    def __init__(self, capacity_blocks: int = 200_000) -> None:
        self._capacity = capacity_blocks
        self._blocks: OrderedDict[int, dict[str, int]] = OrderedDict()  # hash -> {endpoint: stamp}
        self._allocated: dict[str, int] = {}
        self._horizon: dict[str, float] = {}

    def __len__(self) -> int:
        return len(self._blocks)

    def horizon(self, endpoint: str) -> float:
        """Age in blocks past which *endpoint* is taken to have evicted a block (inf: never)."""
        return self._horizon.get(endpoint, math.inf)

    def _cutoff(self, endpoint: str) -> float:
        """The oldest stamp *endpoint* still holds (stamps are >= 0; -1: every one)."""
        return max(-1.0, self._allocated.get(endpoint, 0) - self.horizon(endpoint))

    def record(self, endpoint: str, hashes: Iterable[int]) -> None:
        """*endpoint* now holds the blocks *hashes* (it served, or reported, them)."""
        blocks = self._blocks
        cutoff = self._cutoff(endpoint)
        touched = []
        new = 0
        for h in hashes:
            holders = blocks.get(h)
            if holders is None:
                holders = blocks[h] = {}
            else:
                blocks.move_to_end(h)
            new += holders.get(endpoint, _NEVER) < cutoff
            touched.append(holders)
        count = self._allocated[endpoint] = self._allocated.get(endpoint, 0) + new
        for holders in touched:  # one request's blocks: touched together, all of age 0
            holders[endpoint] = count
        while len(blocks) > self._capacity:
            blocks.popitem(last=False)

    def remove(self, endpoint: str, hashes: Iterable[int]) -> None:
        """*endpoint* evicted the blocks *hashes*."""
        for h in hashes:
            holders = self._blocks.get(h)
            if holders is not None:
                holders.pop(endpoint, None)
                if not holders:
                    del self._blocks[h]

    def forget_endpoint(self, endpoint: str) -> None:
        for h in [h for h, holders in self._blocks.items() if endpoint in holders]:
            self.remove(endpoint, (h,))
        self._allocated.pop(endpoint, None)
        self._horizon.pop(endpoint, None)

    def ages(self, endpoint: str, hashes: Sequence[int]) -> list[int]:
        """The ages at *endpoint* of the leading blocks of *hashes* it has an entry for,
        whatever the horizon (up to the first block it has none for)."""
        count = self._allocated.get(endpoint, 0)
        out = []
        for h in hashes:
            stamp = self._blocks.get(h, {}).get(endpoint)
            if stamp is None:
                break
            out.append(count - stamp)
        return out

    def learn_horizon(self, endpoint: str, ages: Sequence[int], cached_blocks: int) -> None:
        """The engine at *endpoint* had the first *cached_blocks* of a request's blocks cached,
        whose ages there were *ages* when it was routed: move the horizon below the age of the
        first block it no longer had, and above the age of the last block it still had."""
        horizon = self.horizon(endpoint)
        if cached_blocks < len(ages):
            gone = ages[cached_blocks]
            if gone <= horizon:
                horizon = gone - 1 if math.isinf(horizon) else horizon - HORIZON_STEP * (horizon - gone) - 1
        if 0 < cached_blocks and not math.isinf(horizon):
            kept = ages[min(cached_blocks, len(ages)) - 1]
            if kept > horizon:
                horizon += HORIZON_STEP * (kept - horizon) + 1
        self._horizon[endpoint] = max(0.0, horizon)

    def matched_blocks(self, hashes: Sequence[int], endpoints: Sequence[str]) -> dict[str, int]:
        """For each endpoint, how many leading blocks of *hashes* it holds (within its horizon)."""
        cutoff = {e: self._cutoff(e) for e in endpoints}
        every_stamp = all(c < 0 for c in cutoff.values())  # no horizon below what is recorded: set algebra
        result = dict.fromkeys(endpoints, 0)
        alive = set(endpoints)
        blocks = self._blocks
        for i, h in enumerate(hashes):
            holders = blocks.get(h)
            if not holders:
                still: set[str] = set()
            elif every_stamp:
                still = alive & holders.keys()
            else:
                still = {e for e in alive if holders.get(e, _NEVER) >= cutoff[e]}
            if len(still) < len(alive):
                for gone in alive - still:
                    result[gone] = i
                alive = still
                if not alive:
                    return result
        for ep in alive:
            result[ep] = len(hashes)
        return result
