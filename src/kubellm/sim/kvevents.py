"""KV-cache events on ZMQ, in the wire format of vLLM's ``ZmqEventPublisher``.

Each engine step that changed the prefix cache publishes one multipart message
``(topic, seq, payload)`` on a PUB socket: ``seq`` is an 8-byte big-endian counter and
``payload`` a msgpack ``KVEventBatch``. vLLM encodes it with msgspec; the batch is an
``array_like`` struct, ``[ts, [event, ...], data_parallel_rank]``, and each event a
tagged struct. Two encodings of the events exist (``KvEventsFormat``):

``"map"`` (default): vLLM since PR #42892 (first seen in v0.26.0), events are tagged maps::

    {"type": "BlockStored", "block_hashes", "parent_block_hash", "token_ids", "block_size",
     "lora_id", "medium", "lora_name", "extra_keys", "group_idx", "kv_cache_spec_kind"}
    {"type": "BlockRemoved", "block_hashes", "medium", "group_idx"}
    {"type": "AllBlocksCleared"}

``"array"``: vLLM v0.9 up to that change (``array_like`` events), tagged arrays::

    ["BlockStored", block_hashes, parent_block_hash, token_ids, block_size, lora_id, medium, lora_name]
    ["BlockRemoved", block_hashes, medium]
    ["AllBlocksCleared"]

(msgspec ignores trailing array items a struct does not declare, so the 8-item form decodes
with the 5-, 6- and 7-field ``BlockStored`` of every array-era vLLM.)

A ROUTER socket serves replays as vLLM's does: a client sends ``(b"", start_seq)``
(8-byte big-endian) and receives every buffered batch from that sequence number on, then an
end marker with ``-1`` (8 signed bytes) and an empty payload. In ``"map"`` mode each reply is
``(b"", topic, seq, payload)`` as since vLLM PR #45177 (also v0.26.0), the end marker
``(b"", topic, -1, b"")``; in ``"array"`` mode ``(b"", seq, payload)`` and ``(b"", -1, b"")``.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from typing import Any

import msgpack
import zmq
import zmq.asyncio

from kubellm.sim.config import KvEventsFormat
from kubellm.sim.errors import SimConfigError
from kubellm.sim.kvcache import AllBlocksCleared, BlockRemoved, BlockStored, KvEvent

MEDIUM = "GPU"
END_SEQ = (-1).to_bytes(8, "big", signed=True)
# One KV-cache group of full attention, as vLLM reports a dense model's blocks.
_GROUP_IDX = 0
_SPEC_KIND = "full_attention"


def encode_event(event: KvEvent, fmt: KvEventsFormat = "map") -> list[Any] | dict[str, Any]:
    if fmt == "array":
        if isinstance(event, BlockStored):
            return ["BlockStored", event.block_hashes, event.parent_block_hash, event.token_ids,
                    event.block_size, event.lora_id, MEDIUM, None]
        if isinstance(event, BlockRemoved):
            return ["BlockRemoved", event.block_hashes, MEDIUM]
        return ["AllBlocksCleared"]
    if isinstance(event, BlockStored):
        return {"type": "BlockStored", "block_hashes": event.block_hashes,
                "parent_block_hash": event.parent_block_hash, "token_ids": event.token_ids,
                "block_size": event.block_size, "lora_id": event.lora_id, "medium": MEDIUM,
                "lora_name": None, "extra_keys": [None] * len(event.block_hashes),
                "group_idx": _GROUP_IDX, "kv_cache_spec_kind": _SPEC_KIND}
    if isinstance(event, BlockRemoved):
        return {"type": "BlockRemoved", "block_hashes": event.block_hashes, "medium": MEDIUM,
                "group_idx": _GROUP_IDX}
    return {"type": "AllBlocksCleared"}


def encode_batch(events: list[KvEvent], ts: float, fmt: KvEventsFormat = "map",
                 data_parallel_rank: int = 0) -> bytes:
    """One ``KVEventBatch``: ``[ts, [event, ...], data_parallel_rank]`` (vLLM fills in the rank)."""
    batch = [ts, [encode_event(e, fmt) for e in events], data_parallel_rank]
    return msgpack.packb(batch)  # type: ignore[no-any-return]


def decode_batch(payload: bytes) -> tuple[float, list[KvEvent]]:
    """Events of a payload: tagged-array or tagged-map events, in an array or a map batch."""
    raw = msgpack.unpackb(payload, strict_map_key=False)
    ts, items = (raw["ts"], raw["events"]) if isinstance(raw, dict) else (raw[0], raw[1])
    return ts, [_decode_event(item) for item in items]


def _decode_event(item: Any) -> KvEvent:
    if isinstance(item, dict):
        kind = item.get("type")
        fields = item
    else:
        kind, fields = item[0], None
    if kind == "BlockStored":
        if fields is not None:
            return BlockStored(fields["block_hashes"], fields["parent_block_hash"], fields["token_ids"],
                               fields["block_size"], fields.get("lora_id"))
        return BlockStored(item[1], item[2], item[3], item[4], item[5])
    if kind == "BlockRemoved":
        return BlockRemoved(fields["block_hashes"] if fields is not None else item[1])
    if kind == "AllBlocksCleared":
        return AllBlocksCleared()
    raise ValueError(f"unknown KV event type {kind!r}")


def parse_vllm_config(raw: str) -> tuple[int | None, int | None, str]:
    """(PUB port, replay port, topic) from vLLM's ``--kv-events-config`` JSON.

    Only the ports of the ``tcp://`` endpoints are used: the simulator binds them on its
    own ``--host``, never on a wildcard address. ``enable_kv_cache_events`` false or
    ``publisher`` other than ``zmq`` turns events off (PUB port None).
    """
    try:
        cfg = json.loads(raw)
    except ValueError as exc:
        raise SimConfigError(f"--kv-events-config is not JSON: {exc}") from exc
    if not isinstance(cfg, dict):
        raise SimConfigError("--kv-events-config must be a JSON object")
    topic = str(cfg.get("topic", ""))
    if not cfg.get("enable_kv_cache_events", False) or cfg.get("publisher", "zmq") != "zmq":
        return None, None, topic
    replay = cfg.get("replay_endpoint")
    return _endpoint_port(cfg.get("endpoint", "tcp://*:5557")), None if replay is None else _endpoint_port(replay), topic


def _endpoint_port(endpoint: object) -> int:
    if not isinstance(endpoint, str) or not endpoint.startswith("tcp://") or ":" not in endpoint[6:]:
        raise SimConfigError(f"KV-event endpoint {endpoint!r} must look like tcp://HOST:PORT")
    try:
        return int(endpoint.rsplit(":", 1)[1])
    except ValueError:
        raise SimConfigError(f"KV-event endpoint {endpoint!r} has no numeric port") from None


class KvEventPublisher:
    """PUB socket plus replay ROUTER for one engine; :meth:`publish` drains a list of events."""

    def __init__(self, host: str, port: int, replay_port: int | None = 0, topic: str = "",
                 buffer_steps: int = 10_000, fmt: KvEventsFormat = "map") -> None:
        self._fmt: KvEventsFormat = fmt
        self._ctx = zmq.asyncio.Context()
        self._pub = self._ctx.socket(zmq.PUB)
        self._pub.set_hwm(100_000)
        self.port = _bind(self._pub, host, port)
        self.endpoint = f"tcp://{host}:{self.port}"
        self._replay = None if replay_port is None else self._ctx.socket(zmq.ROUTER)
        self.replay_port = _bind(self._replay, host, replay_port) if self._replay is not None and replay_port is not None else None
        self.replay_endpoint = f"tcp://{host}:{self.replay_port}" if self.replay_port else None
        self._topic = topic.encode()
        self._seq = 0
        self._buffer: deque[tuple[int, bytes]] = deque(maxlen=buffer_steps)
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._replay is not None:
            self._task = asyncio.get_running_loop().create_task(self._serve_replay())

    def publish(self, events: list[KvEvent]) -> None:
        """Send *events* as one batch (nothing when empty) and clear the list."""
        if not events:
            return
        payload = encode_batch(events, time.time(), self._fmt)
        events.clear()
        seq, self._seq = self._seq, self._seq + 1
        self._buffer.append((seq, payload))
        try:
            self._pub.send_multipart((self._topic, seq.to_bytes(8, "big"), payload), flags=zmq.NOBLOCK)
        except zmq.Again:  # PUB drops at its high-water mark; replay still has the batch
            pass

    async def _serve_replay(self) -> None:
        assert self._replay is not None
        while True:
            frames = await self._replay.recv_multipart()
            if len(frames) != 3:
                continue
            client, _, start = frames
            first = int.from_bytes(start, "big")
            head = (client, b"", self._topic) if self._fmt == "map" else (client, b"")
            for seq, payload in list(self._buffer):
                if seq >= first:
                    await self._replay.send_multipart((*head, seq.to_bytes(8, "big"), payload))
            await self._replay.send_multipart((*head, END_SEQ, b""))

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        self._pub.close(linger=0)
        if self._replay is not None:
            self._replay.close(linger=0)
        self._ctx.term()


def _bind(sock: zmq.asyncio.Socket, host: str, port: int) -> int:
    if port == 0:
        return int(sock.bind_to_random_port(f"tcp://{host}"))
    sock.bind(f"tcp://{host}:{port}")
    return port
