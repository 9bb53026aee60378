"""KV-event batches round-trip through vLLM's array-like msgpack encoding."""

from __future__ import annotations

import msgpack
import pytest

from kubellm.sim.kvcache import AllBlocksCleared, BlockRemoved, BlockStored
from kubellm.sim.errors import SimConfigError
from kubellm.sim.kvevents import decode_batch, encode_batch, parse_vllm_config


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


def test_vllm_kv_events_config_gives_ports_and_topic() -> None:
    raw = ('{"enable_kv_cache_events": true, "publisher": "zmq", "endpoint": "tcp://*:5557", '
           '"replay_endpoint": "tcp://*:5558", "topic": "kv"}')
    assert parse_vllm_config(raw) == (5557, 5558, "kv")
    assert parse_vllm_config('{"enable_kv_cache_events": false}') == (None, None, "")
    assert parse_vllm_config('{"enable_kv_cache_events": true}') == (5557, None, "")


def test_bad_kv_events_config_names_the_problem() -> None:
    for raw, needle in (("{nope", "not JSON"), ('{"enable_kv_cache_events": true, "endpoint": "ipc:///x"}',
                                                "tcp://HOST:PORT")):
        with pytest.raises(SimConfigError, match=needle):
            parse_vllm_config(raw)
