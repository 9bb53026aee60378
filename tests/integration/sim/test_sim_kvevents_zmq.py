"""KV events over ZMQ: a subscriber learns exactly which prefix blocks an engine holds."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import httpx
import pytest
import zmq
import zmq.asyncio

from kubellm.sim import SimConfig, run_engine, tokenizer
from kubellm.kvhash import BlockHasher, resolve_seed
from kubellm.sim.kvcache import BlockRemoved, BlockStored, KvEvent
from kubellm.sim.kvevents import END_SEQ, decode_batch
from kubellm.sim.server import EngineServer


@pytest.fixture(params=[("sha256", None), ("xxhash_cbor", "7")], ids=["sha256-unseeded", "xxhash_cbor-seed7"])
async def engine(request: pytest.FixtureRequest) -> AsyncIterator[EngineServer]:
    algo, seed = request.param
    async with run_engine(SimConfig(profile="tiny", num_gpu_blocks=40, kv_events_port=0,
                                    prefix_caching_hash_algo=algo, hash_seed=seed)) as server:
        yield server


async def _collect_until(sub: zmq.asyncio.Socket, done: Callable[[list[tuple[int, KvEvent]]], bool],
                         deadline_s: float = 10.0) -> list[tuple[int, KvEvent]]:
    """Events received until *done* says enough (or the deadline passes)."""
    out: list[tuple[int, KvEvent]] = []
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline_s
    while not done(out) and loop.time() < end:
        try:
            _topic, seq, payload = await asyncio.wait_for(sub.recv_multipart(), end - loop.time())
        except TimeoutError:
            break
        out.extend((int.from_bytes(seq, "big"), e) for e in decode_batch(payload)[1])
    return out


def _stored(events: list[tuple[int, KvEvent]]) -> list[int]:
    return [h for _, e in events if isinstance(e, BlockStored) for h in e.block_hashes]


def _removed(events: list[tuple[int, KvEvent]]) -> set[int]:
    return {h for _, e in events if isinstance(e, BlockRemoved) for h in e.block_hashes}


async def test_stored_blocks_match_router_side_hashes_and_evictions_follow(engine: EngineServer) -> None:
    assert engine.kv_publisher is not None
    ctx = zmq.asyncio.Context()
    sub = ctx.socket(zmq.SUB)
    sub.connect(engine.kv_publisher.endpoint)
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    await asyncio.sleep(0.5)  # PUB/SUB joins are asynchronous (ZMQ "slow joiner")
    prompt = "alpha beta gamma delta " * 40
    try:
        async with httpx.AsyncClient() as http:
            cfg = engine.config
            hasher = BlockHasher(cfg.prefix_caching_hash_algo,
                                 resolve_seed(cfg.prefix_caching_hash_algo, cfg.hash_seed), cfg.block_size)
            expected = hasher.event_hashes(tokenizer.encode(prompt))
            await http.post(engine.url + "/v1/completions", json={"prompt": prompt, "max_tokens": 2})
            first = await _collect_until(sub, lambda ev: len(_stored(ev)) >= len(expected))
            assert _stored(first)[:len(expected)] == expected
            # a different long prompt needs the whole cache: the first prompt's blocks go
            await http.post(engine.url + "/v1/completions", json={"prompt": "zeta eta " * 120, "max_tokens": 2})
            second = await _collect_until(sub, lambda ev: bool(_removed(ev) & set(expected)))
        assert _removed(second) & set(expected)
        seqs = [s for s, _ in first + second]
        assert seqs == sorted(seqs) and seqs[0] == 0
    finally:
        sub.close(linger=0)
        ctx.term()


@pytest.mark.parametrize("fmt", ["map", "array"])
async def test_replay_socket_resends_from_a_sequence_number(fmt: str) -> None:
    """As vLLM >= 0.26 (map) replies ``(topic, seq, payload)``; before, (array) ``(seq, payload)``."""
    config = SimConfig(profile="tiny", num_gpu_blocks=40, kv_events_port=0, kv_events_topic="kv",
                       kv_events_format=fmt)  # type: ignore[arg-type]
    async with run_engine(config) as engine:
        assert engine.kv_publisher is not None and engine.kv_publisher.replay_endpoint
        async with httpx.AsyncClient() as http:
            for i in range(3):
                await http.post(engine.url + "/v1/completions", json={"prompt": f"{i} " * 50, "max_tokens": 1})
        ctx = zmq.asyncio.Context()
        dealer = ctx.socket(zmq.DEALER)
        dealer.connect(engine.kv_publisher.replay_endpoint)
        try:
            await dealer.send_multipart((b"", (1).to_bytes(8, "big")))
            seqs = []
            while True:
                frames = await asyncio.wait_for(dealer.recv_multipart(), 2)
                assert frames[0] == b"" and len(frames) == (4 if fmt == "map" else 3)
                if fmt == "map":
                    assert frames[1] == b"kv"
                seq, payload = frames[-2:]
                if seq == END_SEQ:
                    assert payload == b""
                    break
                seqs.append(int.from_bytes(seq, "big"))
                assert decode_batch(payload)[1]
            assert seqs and seqs[0] == 1 and seqs == list(range(1, seqs[-1] + 1))
        finally:
            dealer.close(linger=0)
            ctx.term()
