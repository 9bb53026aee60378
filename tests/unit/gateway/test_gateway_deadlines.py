"""Deadlines: asyncio.timeout's behaviour for one shared delay (real event loop, real time)."""

from __future__ import annotations

import asyncio

import pytest

from kubellm.gateway.deadlines import Deadlines


async def test_a_scope_past_its_deadline_raises_timeout_error() -> None:
    deadlines = Deadlines(0.05)
    loop = asyncio.get_running_loop()
    start = loop.time()
    with pytest.raises(TimeoutError):
        with deadlines.scope():
            await asyncio.sleep(5)
    assert 0.04 <= loop.time() - start < 1.0
    assert asyncio.current_task().cancelling() == 0  # type: ignore[union-attr]
    await asyncio.sleep(0)  # the task is not left cancelled: it goes on


async def test_scopes_that_finish_in_time_are_untouched_and_dropped() -> None:
    deadlines = Deadlines(0.2)
    for _ in range(100):
        with deadlines.scope():
            await asyncio.sleep(0)
    assert len(deadlines) == 0
    await asyncio.sleep(0.3)  # the timer armed for the first scope fires with nothing due
    with deadlines.scope():
        await asyncio.sleep(0.01)


async def test_many_tasks_each_timed_out_on_its_own_deadline() -> None:
    deadlines = Deadlines(0.1)
    loop = asyncio.get_running_loop()

    async def one(work_s: float) -> str:
        begun = loop.time()
        try:
            with deadlines.scope():
                await asyncio.sleep(work_s)
            return "done"
        except TimeoutError:
            assert loop.time() - begun >= 0.09
            return "timeout"

    tasks = []
    for i in range(20):
        tasks.append(asyncio.ensure_future(one(0.5 if i % 2 else 0.01)))
        await asyncio.sleep(0.005)  # staggered deadlines
    assert await asyncio.gather(*tasks) == ["timeout" if i % 2 else "done" for i in range(20)]
    assert len(deadlines) == 0


async def test_a_cancellation_from_elsewhere_stays_a_cancellation() -> None:
    deadlines = Deadlines(10.0)

    async def inner() -> None:
        with deadlines.scope():
            await asyncio.sleep(5)

    task = asyncio.ensure_future(inner())
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert len(deadlines) == 0


async def test_finished_scopes_behind_a_long_one_are_compacted() -> None:
    deadlines = Deadlines(10.0)
    release = asyncio.Event()

    async def long() -> None:
        with deadlines.scope():
            await release.wait()

    head = asyncio.ensure_future(long())
    await asyncio.sleep(0)
    for _ in range(1000):
        with deadlines.scope():
            await asyncio.sleep(0)
    assert len(deadlines) <= 2 + 64  # not 1001
    release.set()
    await head
    assert len(deadlines) == 0


def test_a_scope_outside_a_task_is_refused() -> None:
    with pytest.raises(RuntimeError):
        Deadlines(1.0).scope()
