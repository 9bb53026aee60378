"""KV-event batches round-trip through vLLM's array-like msgpack encoding."""

from __future__ import annotations

import msgpack

from kubellm.sim.kvcache import AllBlocksCleared, BlockRemoved, BlockStored
from kubellm.sim.kvevents import decode_batch, encode_batch


def test_batch_is_an_array_of_tagged_arrays() -> None:
    events = [BlockStored([11], None, list(range(16)), 16, None), BlockRemoved([7]), AllBlocksCleared()]
    raw = msgpack.unpackb(encode_batch(events, 1.5))
    assert raw[0] == 1.5
    assert raw[1][0] == ["BlockStored", [11], None, list(range(16)), 16, None, "GPU"]
    assert raw[1][1] == ["BlockRemoved", [7], "GPU"]
    assert raw[1][2] == ["AllBlocksCleared"]
    assert decode_batch(encode_batch(events, 1.5)) == (1.5, events)


def test_map_form_of_newer_vllm_decodes_too() -> None:
    payload = msgpack.packb({"ts": 2.0, "events": [
        {"type": "BlockStored", "block_hashes": [1], "parent_block_hash": None, "token_ids": [1, 2],
         "block_size": 16, "lora_id": None, "medium": "GPU"}]})
    assert decode_batch(payload) == (2.0, [BlockStored([1], None, [1, 2], 16, None)])
