from __future__ import annotations

from kubellm.gateway.scheduling.prefix import PrefixIndex, block_hashes


def test_block_hashes_chain_prefixes():
    a = block_hashes("x" * 64 + "y" * 64 + "tail", 64)
    b = block_hashes("x" * 64 + "z" * 64, 64)
    assert len(a) == 2  # the partial tail is not a block
    assert a[0] == b[0] and a[1] != b[1]
    # same block text after a different prefix hashes differently (chained)
    assert block_hashes("q" * 64 + "y" * 64, 64)[1] != a[1]


def test_block_hashes_capped():
    assert len(block_hashes("a" * 1000, 10, max_blocks=7)) == 7


def test_index_is_bounded_lru():
    index = PrefixIndex(capacity_blocks=3)
    index.record("a", [1, 2, 3])
    index.record("a", [1])  # touch 1: block 2 is now least recent
    index.record("b", [4])
    assert len(index) == 3
    assert index.matched_blocks([1, 2], ["a"]) == {"a": 1}
    assert index.matched_blocks([1, 3], ["a"]) == {"a": 2}


def test_remove_and_forget():
    index = PrefixIndex()
    index.record("a", [1, 2])
    index.record("b", [1, 2])
    index.remove("a", [2])
    assert index.matched_blocks([1, 2], ["a", "b"]) == {"a": 1, "b": 2}
    index.forget_endpoint("b")
    assert index.matched_blocks([1, 2], ["a", "b"]) == {"a": 1, "b": 0}
