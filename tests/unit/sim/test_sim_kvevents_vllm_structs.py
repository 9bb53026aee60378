"""KV-event batches decode with vLLM's own msgspec structs, in both of vLLM's encodings.

Skipped where msgspec (vLLM's serializer, not a kubellm dependency) is not installed.

The struct definitions below are copied from vLLM (Apache-2.0), from the "Types copied
from vllm.distributed.kv_events" block of its subscriber example, so a payload that
decodes here decodes in any consumer built on vLLM's types (classes renamed here, each with
its tag set to vLLM's class name, so that three generations fit in one module):

- current: ``examples/features/kv_events/kv_events_subscriber.py`` at vllm-project/vllm
  commit 1bd773f6a52899e189c8237e55473cda0074f2fb (events without ``array_like``, after
  PR #42892); ``data_parallel_rank`` from ``vllm/distributed/kv_events.py``;
- v0.10/v0.11: ``examples/online_serving/kv_events_subscriber.py`` at commit
  0ef0f42653bc5a0c7c44d26ce3a161e692b07a2c (``array_like`` events with ``medium``);
- v0.9: ``vllm/distributed/kv_events.py`` at commit b4e69e0af33f4698e157a262cc787fe61983cd3d.
"""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from kubellm.sim.kvcache import AllBlocksCleared, BlockRemoved, BlockStored
from kubellm.sim.kvevents import encode_batch


ExternalBlockHash = bytes | int  # vllm.v1.core.kv_cache_utils.ExternalBlockHash


class EventBatch(msgspec.Struct, array_like=True, omit_defaults=True, gc=False):
    ts: float
    events: list[Any]
    data_parallel_rank: int | None = None


class KVCacheEvent(msgspec.Struct, omit_defaults=True, gc=False, tag=True):
    """Base class for all KV cache-related events"""


class VllmBlockStored(KVCacheEvent, tag="BlockStored"):
    block_hashes: list[ExternalBlockHash]
    parent_block_hash: ExternalBlockHash | None
    token_ids: list[int]
    block_size: int
    lora_id: int | None
    medium: str | None
    lora_name: str | None
    extra_keys: list[tuple[Any, ...] | None] | None = None
    group_idx: int | None = None
    kv_cache_spec_kind: str | None = None
    kv_cache_spec_sliding_window: int | None = None
    locality: str | None = None


class VllmBlockRemoved(KVCacheEvent, tag="BlockRemoved"):
    block_hashes: list[ExternalBlockHash]
    medium: str | None
    group_idx: int | None = None
    locality: str | None = None


class VllmAllBlocksCleared(KVCacheEvent, tag="AllBlocksCleared"):
    pass


class KVEventBatch(EventBatch):
    events: list[VllmBlockStored | VllmBlockRemoved | VllmAllBlocksCleared]


class V10EventBatch(msgspec.Struct, array_like=True, omit_defaults=True, gc=False):
    ts: float
    events: list[Any]


class V10KVCacheEvent(msgspec.Struct, array_like=True, omit_defaults=True, gc=False, tag=True):
    """Base class for all KV cache-related events"""


class V10BlockStored(V10KVCacheEvent, tag="BlockStored"):
    block_hashes: list[int]
    parent_block_hash: int | None
    token_ids: list[int]
    block_size: int
    lora_id: int | None
    medium: str | None


class V10BlockRemoved(V10KVCacheEvent, tag="BlockRemoved"):
    block_hashes: list[int]
    medium: str | None


class V10AllBlocksCleared(V10KVCacheEvent, tag="AllBlocksCleared"):
    pass


class V10KVEventBatch(V10EventBatch):
    events: list[V10BlockStored | V10BlockRemoved | V10AllBlocksCleared]


class V09BlockStored(V10KVCacheEvent, tag="BlockStored"):
    block_hashes: list[int]
    parent_block_hash: int | None
    token_ids: list[int]
    block_size: int
    lora_id: int | None


class V09BlockRemoved(V10KVCacheEvent, tag="BlockRemoved"):
    block_hashes: list[int]


class V09KVEventBatch(V10EventBatch):
    events: list[V09BlockStored | V09BlockRemoved | V10AllBlocksCleared]


EVENTS = [BlockStored([11, 12], None, list(range(32)), 16, None), BlockStored([13], 12, list(range(16)), 16, 2),
          BlockRemoved([7]), AllBlocksCleared()]


def test_default_batch_decodes_with_current_vllm_structs() -> None:
    batch = msgspec.msgpack.Decoder(KVEventBatch).decode(encode_batch(EVENTS, 1.5))
    assert batch.ts == 1.5 and batch.data_parallel_rank == 0
    stored, child, removed, cleared = batch.events
    assert isinstance(stored, VllmBlockStored) and isinstance(child, VllmBlockStored)
    assert (stored.block_hashes, stored.parent_block_hash, stored.token_ids, stored.block_size) == \
        ([11, 12], None, list(range(32)), 16)
    assert (stored.medium, stored.lora_name, stored.group_idx, stored.extra_keys) == ("GPU", None, 0, [None, None])
    assert (child.parent_block_hash, child.lora_id) == (12, 2)
    assert isinstance(removed, VllmBlockRemoved) and removed.block_hashes == [7] and removed.medium == "GPU"
    assert isinstance(cleared, VllmAllBlocksCleared)


@pytest.mark.parametrize("decoder", [V10KVEventBatch, V09KVEventBatch], ids=["v0.10-v0.11", "v0.9"])
def test_array_batch_decodes_with_array_era_vllm_structs(decoder: type[msgspec.Struct]) -> None:
    batch = msgspec.msgpack.Decoder(decoder).decode(encode_batch(EVENTS, 2.5, "array"))
    stored = batch.events[0]  # type: ignore[attr-defined]
    assert (stored.block_hashes, stored.parent_block_hash, stored.token_ids, stored.block_size, stored.lora_id) == \
        ([11, 12], None, list(range(32)), 16, None)
    assert batch.events[1].lora_id == 2 and batch.events[2].block_hashes == [7]  # type: ignore[attr-defined]
    assert type(batch.events[3]).__name__ == "V10AllBlocksCleared"  # type: ignore[attr-defined]


def test_the_two_encodings_are_not_interchangeable_for_typed_consumers() -> None:
    with pytest.raises(msgspec.ValidationError):
        msgspec.msgpack.Decoder(V10KVEventBatch).decode(encode_batch(EVENTS, 1.0, "map"))
    with pytest.raises(msgspec.ValidationError):
        msgspec.msgpack.Decoder(KVEventBatch).decode(encode_batch(EVENTS, 1.0, "array"))
