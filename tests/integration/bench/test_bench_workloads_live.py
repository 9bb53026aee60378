"""Workload shapes reach the server as intended: usage counts from the simulator prove it."""

from __future__ import annotations

from kubellm.bench import driver
from kubellm.bench.client import Target
from kubellm.bench.records import LoadPoint
from kubellm.bench.workload import Length, WorkloadConfig, generate


async def test_multi_turn_prompts_grow_turn_by_turn(sim) -> None:  # type: ignore[no-untyped-def]
    config = WorkloadConfig(kind="multi-turn", turns=3, prompt_tokens=Length(low=20, high=20),
                            output_tokens=Length(low=8, high=8))
    async with sim(5, 1) as url:
        records = await driver.run(Target(url, "m"), generate(config, 6), LoadPoint(mode="concurrency", value=2))
    by_conv: dict[int | None, list[int]] = {}
    for r in sorted(records, key=lambda r: r.turn):
        assert r.ok and r.prompt_tokens
        by_conv.setdefault(r.conversation, []).append(r.prompt_tokens)
    for prompts in by_conv.values():
        assert prompts == sorted(prompts) and prompts[-1] > prompts[0] + 40  # 2 turns of 20 + 8 words


async def test_shared_prefix_prompts_are_longer_by_the_prefix(sim) -> None:  # type: ignore[no-untyped-def]
    plain = WorkloadConfig(prompt_tokens=Length(low=20, high=20), output_tokens=Length(low=4, high=4))
    shared = plain.model_copy(update={"kind": "shared-prefix", "prefix_count": 2, "prefix_tokens": 100})
    async with sim(5, 1) as url:
        target, load = Target(url, "m"), LoadPoint(mode="concurrency", value=4)
        without = await driver.run(target, generate(plain, 8), load)
        with_prefix = await driver.run(target, generate(shared, 8), load)
    assert min(r.prompt_tokens or 0 for r in with_prefix) > max(r.prompt_tokens or 0 for r in without) + 80


async def test_a_dead_server_becomes_connection_error_records() -> None:
    records = await driver.run(Target("http://127.0.0.1:9", "m", timeout_s=5), generate(WorkloadConfig(), 3),
                               LoadPoint(mode="concurrency", value=3))
    assert [r.error for r in records] == ["connection"] * 3
