"""Precise prefix state from the engines' own KV-cache events (vLLM's ZMQ publisher format).

Each engine publishes multipart ``(topic, seq, payload)`` messages; ``payload`` is a
msgpack ``KVEventBatch``: ``[ts, [event, ...], ...]`` with array-like, tagged events
(``["BlockStored", block_hashes, parent, token_ids, block_size, lora_id, medium]``,
``["BlockRemoved", block_hashes, medium]``, ``["AllBlocksCleared"]``), or the map form.
Decoding is pure; :class:`KvEventSubscriber` owns one SUB socket per endpoint.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any
from urllib.parse import urlsplit

import msgpack
import zmq
import zmq.asyncio

from kubellm.gateway.config import ModelConfig
from kubellm.gateway.scheduling.prefix import PrefixIndex

log = logging.getLogger("kubellm.gateway.kvevents")


def decode_events(payload: bytes) -> list[tuple[str, list[Any]]]:
    """(kind, block hashes) of each event of one batch; unknown kinds are skipped."""
    raw = msgpack.unpackb(payload, strict_map_key=False)
    items = raw.get("events", []) if isinstance(raw, dict) else raw[1]
    out: list[tuple[str, list[Any]]] = []
    for item in items:
        if isinstance(item, dict):
            kind, hashes = item.get("type"), item.get("block_hashes") or []
        else:
            kind, hashes = item[0], (item[1] if len(item) > 1 else [])
        if kind in ("BlockStored", "BlockRemoved", "AllBlocksCleared"):
            out.append((str(kind), [bytes(h) if isinstance(h, (bytes, bytearray)) else h for h in hashes]))
    return out


def apply_events(index: PrefixIndex, endpoint: str, events: list[tuple[str, list[Any]]]) -> None:
    for kind, hashes in events:
        if kind == "BlockStored":
            index.record(endpoint, hashes)
        elif kind == "BlockRemoved":
            index.remove(endpoint, hashes)
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
    """One SUB socket per endpoint, feeding the shared precise-prefix index."""

    def __init__(self, index: PrefixIndex) -> None:
        self._index = index
        self._ctx = zmq.asyncio.Context()
        self._tasks: dict[str, asyncio.Task[None]] = {}

    def watch(self, endpoint: str, address: str) -> None:
        if endpoint not in self._tasks:
            self._tasks[endpoint] = asyncio.ensure_future(self._run(endpoint, address))

    def unwatch(self, endpoint: str) -> None:
        task = self._tasks.pop(endpoint, None)
        if task is not None:
            task.cancel()
        self._index.forget_endpoint(endpoint)

    async def _run(self, endpoint: str, address: str) -> None:
        sock = self._ctx.socket(zmq.SUB)
        sock.setsockopt(zmq.SUBSCRIBE, b"")
        sock.connect(address)
        try:
            while True:
                frames = await sock.recv_multipart()
                try:
                    apply_events(self._index, endpoint, decode_events(frames[-1]))
                except (ValueError, TypeError, IndexError, msgpack.UnpackException) as exc:
                    log.warning("bad KV event batch from %s: %s", address, exc)
        finally:
            sock.close(linger=0)

    async def close(self) -> None:
        tasks = list(self._tasks.values())
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()
        self._ctx.term()
