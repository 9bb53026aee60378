"""Precise prefix routing end to end: simulated engines hashing blocks with vLLM's hashing
(an xxhash algorithm, a shared PYTHONHASHSEED) publish KV events over ZMQ on loopback; the
gateway hashes prompts the same way, or counts the disagreement when it does not."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

from kubellm.sim import SimConfig, run_fleet

from .conftest import StartGateway, model

SYSTEM = "You are a careful assistant who answers in one line. " * 12
ENGINE = dict(model="m", profile="tiny", kv_events_port=0, prefix_caching_hash_algo="xxhash_cbor", hash_seed="5")


def _precise(urls: Any, **kw: Any) -> dict[str, Any]:
    kv = {s.url: s.kv_publisher.endpoint for s in urls.servers}
    return {"models": [model("m", urls, profile="precise", preciseTokenizer="sim", kvEventsEndpoints=kv,
                             kvHashAlgo="xxhash_cbor", **kw)],
            "profiles": {"precise": {"scorers": [{"type": "precise-prefix", "weight": 1}]}}}


async def _chat(gw: Any, question: str) -> None:
    await gw.client().chat.completions.create(
        model="m", max_tokens=2, messages=[{"role": "system", "content": SYSTEM}, {"role": "user", "content": question}])


def _rejected(gw: Any) -> dict[str, float]:
    """kubellm_kv_events_rejected_total by reason, as /metrics exports it."""
    out: dict[str, float] = {}
    for family in gw.gateway.metrics.registry.collect():
        for s in family.samples:
            if s.name == "kubellm_kv_events_rejected_total":
                out[s.labels["reason"]] = out.get(s.labels["reason"], 0.0) + s.value
    return out


async def _wait(predicate: Any, deadline_s: float = 5.0) -> bool:
    for _ in range(int(deadline_s / 0.02)):
        if predicate():
            return True
        await asyncio.sleep(0.02)
    return False


async def test_same_seed_routes_every_turn_to_the_cache_holder(start_gateway: StartGateway) -> None:
    async with run_fleet(SimConfig(**ENGINE), replicas=3) as urls:
        gw = await start_gateway(_precise(urls, kvHashSeed="5"))
        await asyncio.sleep(0.3)  # ZMQ subscriptions settle
        await _chat(gw, "first")
        index = gw.gateway.routing.precise_prefix
        assert await _wait(lambda: len(index) > 0)
        for i in range(5):
            await _chat(gw, f"q{i}")
        assert sum(s.engine.stats.prompt_tokens > 0 for s in urls.servers) == 1
        assert _rejected(gw) == {}


async def test_another_seed_is_counted_and_requests_still_served(start_gateway: StartGateway,
                                                                 caplog: Any) -> None:
    async with run_fleet(SimConfig(**ENGINE), replicas=2) as urls:
        gw = await start_gateway(_precise(urls, kvHashSeed="6"))
        await asyncio.sleep(0.3)
        with caplog.at_level(logging.WARNING, logger="kubellm.gateway.kvevents"):
            for i in range(3):
                await _chat(gw, f"q{i}")
            assert await _wait(lambda: bool(_rejected(gw)))
        assert set(_rejected(gw)) == {"hash_mismatch"}
        assert any("PYTHONHASHSEED" in r.getMessage() for r in caplog.records)


async def test_missing_tokenizer_file_starts_and_routes_approximately(start_gateway: StartGateway,
                                                                       tmp_path: Path, caplog: Any) -> None:
    async with run_fleet(SimConfig(model="m", fixed_ttft_ms=5, fixed_tpot_ms=1), replicas=2) as urls:
        with caplog.at_level(logging.WARNING, logger="kubellm.gateway.tokenizers"):
            gw = await start_gateway({"models": [model("m", urls, preciseTokenizer="hf",
                                                       tokenizerPath=str(tmp_path / "nowhere"))]})
        warnings = [r.getMessage() for r in caplog.records if r.name == "kubellm.gateway.tokenizers"]
        assert len(warnings) == 1 and "'m'" in warnings[0] and "tokenizer.json" in warnings[0]
        out = await gw.client().completions.create(model="m", prompt="hello there", max_tokens=2)
        assert out.choices[0].text
        assert gw.gateway.precise == {}
