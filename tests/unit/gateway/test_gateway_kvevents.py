"""Decoding vLLM's KV-event batches (array and map forms) into the precise-prefix index; bad
batches and engines that hash differently are counted, never raised."""

from __future__ import annotations

import asyncio

import msgpack
import pytest

from kubellm.gateway.config import ModelConfig
from kubellm.gateway.kvevents import (
    KvEvent,
    KvEventError,
    KvEventSubscriber,
    apply_events,
    decode_events,
    kv_address,
    root_block_agrees,
)
from kubellm.gateway.scheduling.prefix import PrefixIndex
from kubellm.kvhash import BlockHasher, event_hash

HASHER = BlockHasher("sha256", "0", 4)


def test_array_form_batch() -> None:
    payload = msgpack.packb([1.5, [["BlockStored", [11, 12], None, [1, 2, 3], 16, None, "GPU"],
                                   ["BlockRemoved", [12], "GPU"], ["AllBlocksCleared"], ["Unknown", 1]], 0])
    assert [(e.kind, e.hashes) for e in decode_events(payload)] == [
        ("BlockStored", [11, 12]), ("BlockRemoved", [12]), ("AllBlocksCleared", [])]


def test_map_form_batch_with_bytes_hashes_reduced_to_the_64_bit_form() -> None:
    whole = HASHER.hashes([1, 2, 3, 4])[0]
    payload = msgpack.packb({"ts": 1.0, "events": [{"type": "BlockStored", "block_hashes": [whole],
                                                    "parent_block_hash": None, "token_ids": [1, 2, 3, 4]}]})
    (event,) = decode_events(payload)
    assert event.hashes == [event_hash(whole)] and root_block_agrees(event, HASHER)


@pytest.mark.parametrize("payload", [b"\xc1garbage", msgpack.packb("text"), msgpack.packb([1.0, "x"]),
                                     msgpack.packb([1.0, [[1, 2]]]), msgpack.packb([1.0, [["BlockStored", [1.5]]]])])
def test_unknown_encodings_are_errors(payload: bytes) -> None:
    with pytest.raises(KvEventError):
        decode_events(payload)


def test_root_block_check() -> None:
    tokens = list(range(8))
    ours = HASHER.event_hashes(tokens)
    assert root_block_agrees(KvEvent("BlockStored", ours, None, tuple(tokens)), HASHER) is True
    other_seed = BlockHasher("sha256", "1", 4).event_hashes(tokens)
    assert root_block_agrees(KvEvent("BlockStored", other_seed, None, tuple(tokens)), HASHER) is False
    assert root_block_agrees(KvEvent("BlockStored", ours[:1], None, tuple(tokens)), HASHER) is False  # block size
    assert root_block_agrees(KvEvent("BlockStored", ours[1:], ours[0], tuple(tokens[4:])), HASHER) is None
    assert root_block_agrees(KvEvent("BlockStored", ours, None, tuple(tokens), keyed=True), HASHER) is None


async def test_subscriber_counts_bad_batches_and_mismatches_and_keeps_going() -> None:
    index, rejects = PrefixIndex(), []
    sub = KvEventSubscriber(index, lambda ep, reason: rejects.append((ep, reason)))
    tokens = list(range(4))
    good = msgpack.packb([0.0, [["BlockStored", HASHER.event_hashes(tokens), None, tokens, 4, None, "GPU"]]])
    bad_seed = msgpack.packb([0.0, [["BlockStored", BlockHasher("sha256", "9", 4).event_hashes(tokens), None,
                                     tokens, 4, None, "GPU"]]])
    for payload in (b"\x00\x01", bad_seed, b"\x00\x01", good):
        sub.handle("http://a", payload, HASHER)
    assert rejects == [("http://a", "encoding"), ("http://a", "hash_mismatch"), ("http://a", "encoding")]
    assert index.matched_blocks(HASHER.event_hashes(tokens), ["http://a"]) == {"http://a": 1}
    await sub.close()
    await asyncio.sleep(0)


def test_events_drive_the_index() -> None:
    index = PrefixIndex()
    apply_events(index, "http://a", [KvEvent("BlockStored", [1, 2, 3])])
    apply_events(index, "http://b", [KvEvent("BlockStored", [1, 2])])
    apply_events(index, "http://a", [KvEvent("BlockRemoved", [3])])
    assert index.matched_blocks([1, 2, 3], ["http://a", "http://b"]) == {"http://a": 2, "http://b": 2}
    apply_events(index, "http://b", [KvEvent("AllBlocksCleared", [])])
    assert index.matched_blocks([1, 2], ["http://a", "http://b"]) == {"http://a": 2, "http://b": 0}


def test_kv_address() -> None:
    m = ModelConfig(name="m", kv_events_port=5557, kv_events_endpoints={"http://x:1": "tcp://y:2"})
    assert kv_address(m, "http://10.0.0.1:8000") == "tcp://10.0.0.1:5557"
    assert kv_address(m, "http://x:1") == "tcp://y:2"
    assert kv_address(ModelConfig(name="m"), "http://a:1") is None
