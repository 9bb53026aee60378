"""Precise prefix state from the engines' own KV-cache events (vLLM's ZMQ publisher format).

Each engine publishes multipart ``(topic, seq, payload)`` messages; ``payload`` is a
msgpack ``KVEventBatch``: ``[ts, [event, ...], ...]`` with array-like, tagged events
(``["BlockStored", block_hashes, parent, token_ids, block_size, lora_id, medium]``,
``["BlockRemoved", block_hashes, medium]``, ``["AllBlocksCleared"]``), or the map form
(vLLM >= 0.26). Block hashes arrive as 64-bit integers (vLLM's default) or as the whole
hash in bytes (``VLLM_KV_EVENTS_USE_INT_BLOCK_HASHES=0``), which is reduced to the same
64-bit form.

Two kinds of bad input are counted, never raised into the subscriber's loop: a payload in
an encoding this does not know (``encoding``), and a first block whose hash is not what the
gateway computes from its own token ids (``hash_mismatch``: the engine hashes with another
algorithm, seed or block size, so its blocks would never match a request).

Decoding and checking are pure; :class:`KvEventSubscriber` owns one SUB socket per endpoint.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import msgpack
import zmq
import zmq.asyncio

from kubellm.gateway.config import ModelConfig
from kubellm.gateway.scheduling.prefix import PrefixIndex
from kubellm.kvhash import BlockHasher, event_hash

log = logging.getLogger("kubellm.gateway.kvevents")

KINDS = ("BlockStored", "BlockRemoved", "AllBlocksCleared")
Reject = Callable[[str, str], None]  # (endpoint, reason)


class KvEventError(ValueError):
    """A KV-event payload in an encoding this gateway does not know."""


@dataclass(frozen=True, slots=True)
class KvEvent:
    kind: str
    hashes: list[int]
    parent: int | None = None
    token_ids: tuple[int, ...] = ()
    keyed: bool = False  # the blocks carry extra keys (LoRA, salt, multimodal)


def _hash(value: Any) -> int:
    if isinstance(value, (bytes, bytearray)):
        return event_hash(bytes(value))
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise KvEventError(f"block hash {value!r} is neither an integer nor bytes")


def _fields(item: Any) -> dict[str, Any]:
    if isinstance(item, dict):
        return item
    if isinstance(item, list) and item and isinstance(item[0], str):
        names = ("type", "block_hashes", "parent_block_hash", "token_ids", "block_size", "lora_id")
        return dict(zip(names, item)) if item[0] == "BlockStored" else dict(zip(("type", "block_hashes"), item))
    raise KvEventError(f"event {item!r:.60} is neither a tagged array nor a tagged map")


def _event(item: Any) -> KvEvent | None:
    f = _fields(item)
    if f.get("type") not in KINDS:
        return None  # a kind added by a later vLLM: nothing to learn from it
    hashes = [_hash(h) for h in f.get("block_hashes") or []]
    parent = f.get("parent_block_hash")
    keyed = f.get("lora_id") is not None or f.get("lora_name") is not None or any(f.get("extra_keys") or [])
    return KvEvent(str(f["type"]), hashes, None if parent is None else _hash(parent),
                   tuple(f.get("token_ids") or ()), keyed)


def decode_events(payload: bytes) -> list[KvEvent]:
    """The events of one batch; ``KvEventError`` for an encoding this does not know."""
    try:
        raw = msgpack.unpackb(payload, strict_map_key=False)
        items = raw.get("events") if isinstance(raw, dict) else raw[1]
    except (ValueError, TypeError, IndexError, KeyError, msgpack.UnpackException) as exc:
        raise KvEventError(f"not a msgpack KVEventBatch: {exc}") from exc
    if not isinstance(items, list):
        raise KvEventError("the batch has no list of events")
    return [e for e in map(_event, items) if e is not None]


def root_block_agrees(event: KvEvent, hasher: BlockHasher) -> bool | None:
    """Whether a stored chain's first block has the hash the gateway computes (None: not checkable)."""
    bs = hasher.block_size
    if event.kind != "BlockStored" or event.parent is not None or event.keyed or not event.hashes:
        return None
    if len(event.token_ids) != bs * len(event.hashes):
        return False  # another block size
    return event_hash(hasher.chain(None, event.token_ids[:bs], None)) == event.hashes[0]


def apply_events(index: PrefixIndex, endpoint: str, events: list[KvEvent]) -> None:
    for e in events:
        if e.kind == "BlockStored":
            index.record(endpoint, e.hashes)
        elif e.kind == "BlockRemoved":
            index.remove(endpoint, e.hashes)
        else:
            index.forget_endpoint(endpoint)


def kv_address(model: ModelConfig, url: str) -> str | None:
    """Where *url*'s engine publishes KV events, if the model says."""
    explicit = model.kv_events_endpoints.get(url)
    if explicit is not None:
        return explicit
    if model.kv_events_port is None:
        return None
    return f"tcp://{urlsplit(url).hostname}:{model.kv_events_port}"


class KvEventSubscriber:
    """One SUB socket per endpoint, feeding the shared precise-prefix index.

    *on_reject* is told ``(endpoint, reason)`` for each rejected batch or mismatched
    block; a warning is logged the first time per endpoint and reason.
    """

    def __init__(self, index: PrefixIndex, on_reject: Reject | None = None) -> None:
        self._index = index
        self._on_reject = on_reject
        self._ctx = zmq.asyncio.Context()
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._warned: set[tuple[str, str]] = set()

    def watch(self, endpoint: str, address: str, hasher: BlockHasher | None = None) -> None:
        if endpoint not in self._tasks:
            self._tasks[endpoint] = asyncio.ensure_future(self._run(endpoint, address, hasher))

    def unwatch(self, endpoint: str) -> None:
        task = self._tasks.pop(endpoint, None)
        if task is not None:
            task.cancel()
        self._index.forget_endpoint(endpoint)

    def handle(self, endpoint: str, payload: bytes, hasher: BlockHasher | None) -> None:
        """Apply one batch, counting what is wrong with it instead of raising."""
        try:
            events = decode_events(payload)
        except KvEventError as exc:
            self._reject(endpoint, "encoding", str(exc))
            return
        if hasher is not None and any(root_block_agrees(e, hasher) is False for e in events):
            self._reject(endpoint, "hash_mismatch", f"a first block's hash is not the gateway's ({hasher.algo}, "
                                                    f"block size {hasher.block_size}): check the hash algorithm, "
                                                    "PYTHONHASHSEED and block size of engines and gateway")
        apply_events(self._index, endpoint, events)

    def _reject(self, endpoint: str, reason: str, detail: str) -> None:
        if self._on_reject is not None:
            self._on_reject(endpoint, reason)
        if (endpoint, reason) not in self._warned:
            self._warned.add((endpoint, reason))
            log.warning("KV events of %s rejected (%s): %s", endpoint, reason, detail)

    async def _run(self, endpoint: str, address: str, hasher: BlockHasher | None) -> None:
        sock = self._ctx.socket(zmq.SUB)
        sock.setsockopt(zmq.SUBSCRIBE, b"")
        sock.connect(address)
        try:
            while True:
                frames = await sock.recv_multipart()
                self.handle(endpoint, frames[-1], hasher)
        finally:
            sock.close(linger=0)

    async def close(self) -> None:
        tasks = list(self._tasks.values())
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()
        self._ctx.term()
