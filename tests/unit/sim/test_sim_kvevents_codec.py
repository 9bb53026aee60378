"""KV-event batches: both of vLLM's encodings round-trip, and the gateway reads them."""

from __future__ import annotations

import msgpack
import pytest

from kubellm.gateway.kvevents import decode_events
from kubellm.sim.errors import SimConfigError
from kubellm.sim.kvcache import AllBlocksCleared, BlockRemoved, BlockStored
from kubellm.sim.kvevents import decode_batch, encode_batch, parse_vllm_config

EVENTS = [BlockStored([11, 12], None, list(range(32)), 16, None), BlockStored([13], 12, list(range(16)), 16, 2),
          BlockRemoved([7]), AllBlocksCleared()]


def test_default_batch_is_an_array_of_tagged_maps() -> None:
    raw = msgpack.unpackb(encode_batch(EVENTS, 1.5))
    assert isinstance(raw, list) and raw[0] == 1.5 and raw[2] == 0
    assert raw[1][2] == {"type": "BlockRemoved", "block_hashes": [7], "medium": "GPU", "group_idx": 0}
    assert raw[1][3] == {"type": "AllBlocksCleared"}


def test_array_batch_is_tagged_arrays() -> None:
    raw = msgpack.unpackb(encode_batch(EVENTS, 1.5, "array"))
    assert raw[1][0] == ["BlockStored", [11, 12], None, list(range(32)), 16, None, "GPU", None]
    assert raw[1][2] == ["BlockRemoved", [7], "GPU"] and raw[1][3] == ["AllBlocksCleared"]


@pytest.mark.parametrize("fmt", ["map", "array"])
def test_both_encodings_round_trip_and_the_gateway_reads_them(fmt: str) -> None:
    payload = encode_batch(EVENTS, 1.5, fmt)  # type: ignore[arg-type]
    assert decode_batch(payload) == (1.5, EVENTS)
    assert [(e.kind, e.hashes) for e in decode_events(payload)] == [
        ("BlockStored", [11, 12]), ("BlockStored", [13]), ("BlockRemoved", [7]), ("AllBlocksCleared", [])]
    assert decode_events(payload)[0].token_ids == tuple(range(32))


def test_a_map_batch_envelope_decodes_too() -> None:
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
