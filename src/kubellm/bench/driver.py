"""Runs a list of requests against a target: open loop at a rate, or closed loop at a concurrency.

A ``stop`` event (set on SIGTERM by the CLI) ends dispatching early: no new request goes
out, those in flight finish (bounded by the per-request timeout), and only the requests
actually sent have records.

Open loop: every request is launched at its scheduled time whether or not earlier ones have
finished, so a slow server meets the offered load it was promised (each record keeps its
scheduled and actual send time, and the summary reports the lag). Closed loop: N workers,
each sending its next request when its last one finished.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import aiohttp

from kubellm.bench.arrivals import constant_offsets, poisson_offsets
from kubellm.bench.client import Clock, Target, send
from kubellm.bench.records import LoadPoint, RequestRecord
from kubellm.bench.workload import RequestSpec

OnRecord = Callable[[RequestRecord], None]
Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True)
class Timer:
    """The clock and sleep the driver uses; injected so schedules can be tested without waiting."""

    now: Clock = time.perf_counter
    sleep: Sleep = asyncio.sleep


def _session() -> aiohttp.ClientSession:
    # No connection cap: the offered load, not the client's pool, decides concurrency.
    connector = aiohttp.TCPConnector(limit=0, force_close=False)
    return aiohttp.ClientSession(connector=connector)


async def run(
    target: Target,
    requests: Sequence[RequestSpec],
    load: LoadPoint,
    *,
    seed: int = 0,
    timer: Timer | None = None,
    on_record: OnRecord | None = None,
    stop: asyncio.Event | None = None,
) -> list[RequestRecord]:
    """Send *requests* under *load*; records come back in request order."""
    timer = timer or Timer()
    notify = on_record or (lambda _record: None)
    stop = stop or asyncio.Event()
    async with _session() as session:
        if load.mode == "rate":
            offsets = (
                poisson_offsets(load.value, len(requests), seed)
                if load.arrivals == "poisson"
                else constant_offsets(load.value, len(requests))
            )
            return await run_open_loop(session, target, requests, offsets, timer, notify, stop)
        concurrency = int(load.value)
        return await run_closed_loop(session, target, requests, concurrency, timer, notify, stop)


async def run_open_loop(
    session: aiohttp.ClientSession,
    target: Target,
    requests: Sequence[RequestSpec],
    offsets: Sequence[float],
    timer: Timer,
    notify: OnRecord,
    stop: asyncio.Event,
) -> list[RequestRecord]:
    """Launch request i at ``offsets[i]`` seconds after the start, never waiting on replies."""
    origin = timer.now()
    tasks: list[asyncio.Task[RequestRecord]] = []
    for index, (spec, offset) in enumerate(zip(requests, offsets, strict=True)):
        delay = origin + offset - timer.now()
        if delay > 0:
            await _pause(timer, delay, stop)
        if stop.is_set():
            break
        coro = send(
            session, target, spec, index=index, origin=origin, clock=timer.now, scheduled_s=offset
        )
        tasks.append(asyncio.create_task(_notified(coro, notify)))
    return list(await asyncio.gather(*tasks))


async def run_closed_loop(
    session: aiohttp.ClientSession,
    target: Target,
    requests: Sequence[RequestSpec],
    concurrency: int,
    timer: Timer,
    notify: OnRecord,
    stop: asyncio.Event,
) -> list[RequestRecord]:
    """*concurrency* workers share one queue of requests; each sends its next when one ends."""
    origin = timer.now()
    queue = iter(enumerate(requests))
    records: list[RequestRecord | None] = [None] * len(requests)

    async def worker() -> None:
        for index, spec in queue:
            if stop.is_set():
                return
            coro = send(session, target, spec, index=index, origin=origin, clock=timer.now)
            records[index] = await _notified(coro, notify)

    await asyncio.gather(*(worker() for _ in range(min(concurrency, len(requests)))))
    return [r for r in records if r is not None]


async def _pause(timer: Timer, delay: float, stop: asyncio.Event) -> None:
    """Sleep *delay* seconds on the injected timer, or less if *stop* is set meanwhile."""
    sleeper = asyncio.ensure_future(timer.sleep(delay))
    stopper = asyncio.ensure_future(stop.wait())
    await asyncio.wait((sleeper, stopper), return_when=asyncio.FIRST_COMPLETED)
    for task in (sleeper, stopper):
        task.cancel()


async def _notified(coro: Awaitable[RequestRecord], notify: OnRecord) -> RequestRecord:
    record = await coro
    notify(record)
    return record
