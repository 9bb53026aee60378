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


# an entry packs the block's stamp (>= 0) and whether it was *reused* there (recorded again
# while held: a hit) into one int, ``stamp * 2 + reused``, so the hot loop stays a dict lookup
_ABSENT = -4  # the entry of a block an endpoint has none for: stamp -2, below every cutoff
FRESH, REUSED = 0, 1
HORIZON_STEP = 0.25  # how far one contradicting observation moves an endpoint's horizon


def _lowered(horizon: float, gone: int) -> float:
    """The horizon after a block aged *gone* was found evicted (if it was within it)."""
    if gone > horizon:
        return horizon
    return gone - 1 if math.isinf(horizon) else horizon - HORIZON_STEP * (horizon - gone) - 1


def _raised(horizon: float, kept: int) -> float:
    """The horizon after a block aged *kept* was found still cached (if it was beyond it)."""
    return horizon + HORIZON_STEP * (kept - horizon) + 1 if not math.isinf(horizon) and kept > horizon else horizon


class PrefixIndex:
    """block hash -> endpoints that hold it, least recently used blocks evicted first.

    Each endpoint counts the blocks recorded there that it did not hold (its allocations); a
    block's *age* at an endpoint is how many it allocated since the block was last recorded
    there. An engine's cache holds a bounded number of blocks, so past some age a block is
    gone: :meth:`learn_horizon` takes what the engine reported cached for a routed request and
    moves the endpoint's *horizon* (the age past which a block counts as evicted; unbounded
    until an engine contradicts the index) towards the ages that were, and were not, held.

    Two horizons per endpoint, one per kind of block: *reused* blocks (recorded again while
    held: a shared system prompt, a chat's earlier turns) and *fresh* ones (recorded once: the
    newest turn of a chat). Of two blocks of one age the fresh one goes first (the engine frees
    a finished request's blocks, and evicts free blocks least recently used; a shared prefix is
    in use by other requests and touched by each), so one horizon learned from both let the
    evicted tails of chats pull it down below the hot prefixes that were still cached."""

    def __init__(self, capacity_blocks: int = 200_000) -> None:
        self._capacity = capacity_blocks
        self._blocks: OrderedDict[int, dict[str, int]] = OrderedDict()  # hash -> {endpoint: stamp*2+reused}
        self._allocated: dict[str, int] = {}
        self._horizons: dict[str, tuple[float, float]] = {}  # endpoint -> (fresh, reused)

    def __len__(self) -> int:
        return len(self._blocks)

    def horizon(self, endpoint: str, kind: int = FRESH) -> float:
        """Age in blocks past which *endpoint* is taken to have evicted a block of *kind*
        (:data:`FRESH` or :data:`REUSED`; inf: never)."""
        return self._horizons.get(endpoint, (math.inf, math.inf))[kind]

    def _cutoffs(self, endpoint: str) -> tuple[float, float]:
        """The oldest stamp *endpoint* still holds, per kind (stamps are >= 0; -1: every one)."""
        count = self._allocated.get(endpoint, 0)
        fresh, reused = self._horizons.get(endpoint, (math.inf, math.inf))
        return max(-1.0, count - fresh), max(-1.0, count - reused)

    def record(self, endpoint: str, hashes: Iterable[int]) -> None:
        """*endpoint* now holds the blocks *hashes* (it served, or reported, them)."""
        blocks = self._blocks
        cutoffs = self._cutoffs(endpoint)
        touched = []
        new = 0
        for h in hashes:
            holders = blocks.get(h)
            if holders is None:
                holders = blocks[h] = {}
            else:
                blocks.move_to_end(h)
            entry = holders.get(endpoint, _ABSENT)
            held = (entry >> 1) >= cutoffs[entry & 1]
            new += not held
            touched.append((holders, held))
        count = self._allocated[endpoint] = self._allocated.get(endpoint, 0) + new
        for holders, held in touched:  # one request's blocks: touched together, all of age 0
            holders[endpoint] = 2 * count + held
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
        self._horizons.pop(endpoint, None)

    def block_states(self, endpoint: str, hashes: Sequence[int]) -> list[tuple[int, int]]:
        """(age, kind) at *endpoint* of the leading blocks of *hashes* it has an entry for,
        whatever the horizons (up to the first block it has none for)."""
        count = self._allocated.get(endpoint, 0)
        out = []
        for h in hashes:
            entry = self._blocks.get(h, {}).get(endpoint)
            if entry is None:
                break
            out.append((count - (entry >> 1), entry & 1))
        return out

    def ages(self, endpoint: str, hashes: Sequence[int]) -> list[int]:
        """The ages of :meth:`block_states`."""
        return [age for age, _ in self.block_states(endpoint, hashes)]

    def learn_horizon(self, endpoint: str, ages: Sequence[int], cached_blocks: int,
                      kinds: Sequence[int] | None = None) -> None:
        """The engine at *endpoint* had the first *cached_blocks* of a request's blocks cached,
        whose ages (and *kinds*, all fresh if not given) there were *ages* when it was routed:
        move the horizon of the first block it no longer had below its age, and each kind's
        horizon above the oldest block of that kind it still had."""
        kinds = kinds if kinds is not None else [FRESH] * len(ages)
        horizons = list(self._horizons.get(endpoint, (math.inf, math.inf)))
        if cached_blocks < len(ages):
            kind = kinds[cached_blocks]
            horizons[kind] = _lowered(horizons[kind], ages[cached_blocks])
        held = list(zip(ages[:cached_blocks], kinds))
        for kind in (FRESH, REUSED):
            kept = [age for age, k in held if k == kind]
            if kept:
                horizons[kind] = _raised(horizons[kind], max(kept))
        self._horizons[endpoint] = (max(0.0, horizons[FRESH]), max(0.0, horizons[REUSED]))

    def matched_blocks(self, hashes: Sequence[int], endpoints: Sequence[str]) -> dict[str, int]:
        """For each endpoint, how many leading blocks of *hashes* it holds (within its horizons)."""
        cutoffs = {e: self._cutoffs(e) for e in endpoints}
        every_stamp = all(max(c) < 0 for c in cutoffs.values())  # no horizon below what is recorded: set algebra
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
                still = {e for e in alive if _held(holders.get(e, _ABSENT), cutoffs[e])}
            if len(still) < len(alive):
                for gone in alive - still:
                    result[gone] = i
                alive = still
                if not alive:
                    return result
        for ep in alive:
            result[ep] = len(hashes)
        return result


def _held(entry: int, cutoffs: tuple[float, float]) -> bool:
    return (entry >> 1) >= cutoffs[entry & 1]
