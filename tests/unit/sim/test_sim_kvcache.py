"""The block pool: prefix hits by chained hashes, LRU eviction of free blocks, events."""

from __future__ import annotations

from kubellm.kvhash import DEFAULT_SEED, BlockHasher
from kubellm.sim.kvcache import BlockPool, BlockRemoved, BlockStored, KvEvent


def block_hashes(tokens: list[int], block_size: int) -> list[int]:
    """The pool's names of *tokens*' full blocks: vLLM's sha256 hashes, 64-bit event form."""
    return BlockHasher("sha256", DEFAULT_SEED, block_size).event_hashes(tokens)


def _fill(pool: BlockPool, tokens: list[int]) -> list[int]:
    hashes = block_hashes(tokens, pool.block_size)
    blocks = pool.allocate(len(hashes))
    assert blocks is not None
    parent = None
    for i, (b, h) in enumerate(zip(blocks, hashes)):
        pool.cache_full(b, h, parent, tokens[i * 4:(i + 1) * 4], None)
        parent = h
    return blocks


def test_chained_hash_depends_on_whole_prefix() -> None:
    a = block_hashes([1, 2, 3, 4, 5, 6, 7, 8], 4)
    b = block_hashes([9, 2, 3, 4, 5, 6, 7, 8], 4)
    assert a[1] != b[1]  # same second block, different first block
    assert block_hashes([1, 2, 3, 4, 5, 6, 7, 8, 9], 4) == a  # a partial block has no hash


def test_freed_blocks_stay_hittable_until_reused() -> None:
    pool = BlockPool(4, 4)
    tokens = list(range(8))
    blocks = _fill(pool, tokens)
    pool.free(blocks)
    assert pool.num_free == 4
    assert pool.lookup(block_hashes(tokens, 4)) == blocks
    pool.allocate(4)  # takes every block, evicting the cached ones
    assert pool.lookup(block_hashes(tokens, 4)) == []


def test_lru_evicts_least_recently_freed_and_tail_first() -> None:
    pool = BlockPool(6, 4)
    pool.allocate(2)  # two blocks never cached, kept in use
    old = list(range(100, 108))
    new = list(range(200, 208))
    old_blocks = _fill(pool, old)
    pool.free(old_blocks)
    new_blocks = _fill(pool, new)
    pool.free(new_blocks)
    pool.allocate(1)
    # the old request's tail block went first; its head and the newer request survive
    assert pool.lookup(block_hashes(old, 4)) == old_blocks[:1]
    assert pool.lookup(block_hashes(new, 4)) == new_blocks


def test_touch_takes_cached_blocks_out_of_the_free_queue() -> None:
    pool = BlockPool(2, 4)
    tokens = list(range(8))
    blocks = _fill(pool, tokens)
    pool.free(blocks)
    hit = pool.lookup(block_hashes(tokens, 4))
    pool.touch(hit)
    assert pool.num_free == 0 and pool.allocate(1) is None
    assert pool.usage() == 1.0


def test_events_record_stores_and_evictions() -> None:
    events: list[KvEvent] = []
    pool = BlockPool(2, 4, events=events)
    tokens = list(range(8))
    hashes = block_hashes(tokens, 4)
    pool.free(_fill(pool, tokens))
    pool.allocate(2)
    stored = [e for e in events if isinstance(e, BlockStored)]
    removed = [e for e in events if isinstance(e, BlockRemoved)]
    assert [e.block_hashes[0] for e in stored] == hashes
    assert stored[1].parent_block_hash == hashes[0] and stored[0].parent_block_hash is None
    assert sorted(h for e in removed for h in e.block_hashes) == sorted(hashes)


def test_caching_disabled_never_hits() -> None:
    pool = BlockPool(4, 4, enable_caching=False)
    tokens = list(range(8))
    pool.free(_fill(pool, tokens))
    assert pool.lookup(block_hashes(tokens, 4)) == []
