"""Decoding vLLM's KV-event batches (array and map forms) into the precise-prefix index."""

from __future__ import annotations

import msgpack

from kubellm.gateway.config import ModelConfig
from kubellm.gateway.kvevents import apply_events, decode_events, kv_address
from kubellm.gateway.scheduling.prefix import PrefixIndex


def test_array_form_batch():
    payload = msgpack.packb([1.5, [["BlockStored", [11, 12], None, [1, 2, 3], 16, None, "GPU"],
                                   ["BlockRemoved", [12], "GPU"], ["AllBlocksCleared"], ["Unknown", 1]], 0])
    assert decode_events(payload) == [("BlockStored", [11, 12]), ("BlockRemoved", [12]), ("AllBlocksCleared", [])]


def test_map_form_batch():
    payload = msgpack.packb({"ts": 1.0, "events": [{"type": "BlockStored", "block_hashes": [b"\x01"]}]})
    assert decode_events(payload) == [("BlockStored", [b"\x01"])]


def test_events_drive_the_index():
    index = PrefixIndex()
    apply_events(index, "http://a", [("BlockStored", [1, 2, 3])])
    apply_events(index, "http://b", [("BlockStored", [1, 2])])
    apply_events(index, "http://a", [("BlockRemoved", [3])])
    assert index.matched_blocks([1, 2, 3], ["http://a", "http://b"]) == {"http://a": 2, "http://b": 2}
    apply_events(index, "http://b", [("AllBlocksCleared", [])])
    assert index.matched_blocks([1, 2], ["http://a", "http://b"]) == {"http://a": 2, "http://b": 0}


def test_kv_address():
    m = ModelConfig(name="m", kv_events_port=5557, kv_events_endpoints={"http://x:1": "tcp://y:2"})
    assert kv_address(m, "http://10.0.0.1:8000") == "tcp://10.0.0.1:5557"
    assert kv_address(m, "http://x:1") == "tcp://y:2"
    assert kv_address(ModelConfig(name="m"), "http://a:1") is None
