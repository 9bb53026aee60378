"""Bounded admission of a pool: slots per endpoint, a FIFO wait queue, 429 beyond it."""

from __future__ import annotations

import asyncio
import random

import pytest

from kubellm.gateway.breaker import CircuitBreaker
from kubellm.gateway.clock import FakeClock
from kubellm.gateway.config import PluginConfig, RoutingProfile
from kubellm.gateway.errors import NoEndpointError, OverloadedError
from kubellm.gateway.pool import Pool
from kubellm.gateway.scheduling.plugins import RoutingState
from kubellm.gateway.scheduling.request import RoutingRequest
from kubellm.gateway.scheduling.scheduler import Scheduler

REQ = RoutingRequest(model="m")


def _pool(urls: list[str], *, max_outstanding: int = 1, max_queue: int = 2, queue_s: float = 5.0) -> Pool:
    clock = FakeClock()
    pool = Pool("m", Scheduler(RoutingProfile(), RoutingState(rng=random.Random(0))),
                lambda: CircuitBreaker(clock, failures=1, open_s=5.0),
                max_outstanding=max_outstanding, max_queue=max_queue, queue_s=queue_s)
    for ep in pool.set_urls(urls):
        ep.healthy = True
    return pool


async def test_slots_queue_and_overload():
    pool = _pool(["http://a", "http://b"])
    first = await pool.acquire(REQ)
    second = await pool.acquire(REQ)
    assert {first.endpoint.url, second.endpoint.url} == {"http://a", "http://b"}
    waiters = [asyncio.ensure_future(pool.acquire(REQ)) for _ in range(2)]
    await asyncio.sleep(0)
    assert pool.queued == 2
    with pytest.raises(OverloadedError) as err:
        await pool.acquire(REQ)
    assert err.value.retry_after is not None and err.value.status == 429
    pool.release(first.endpoint)
    got = await asyncio.wait_for(waiters[0], 1)
    assert got.endpoint is first.endpoint and not waiters[1].done()
    pool.release(second.endpoint)
    assert (await asyncio.wait_for(waiters[1], 1)).endpoint is second.endpoint


async def test_queue_wait_is_bounded_in_time():
    pool = _pool(["http://a"], queue_s=0.05)
    await pool.acquire(REQ)
    with pytest.raises(OverloadedError, match="stayed at capacity"):
        await pool.acquire(REQ)
    assert pool.queued == 0


async def test_membership_keeps_state_and_wakes_holders():
    pool = _pool(["http://a"])
    a = pool.endpoints[0]
    a.outstanding = 3
    fresh = pool.set_urls(["http://a", "http://b"])
    assert pool.endpoints[0] is a and [e.url for e in fresh] == ["http://b"]
    assert not fresh[0].healthy  # new endpoints wait for their first health check
    empty = _pool([])
    with pytest.raises(NoEndpointError):
        await empty.acquire(REQ)
    waiting = asyncio.ensure_future(empty.wait_routable(2.0))
    await asyncio.sleep(0)
    empty.set_urls(["http://c"])[0].healthy = True
    empty.notify()
    assert await asyncio.wait_for(waiting, 1)


async def test_acquire_now_takes_a_free_slot_and_never_jumps_the_queue():
    pool = _pool(["http://a", "http://b"])
    first = pool.acquire_now(REQ)
    assert first is not None and first.endpoint.outstanding == 1
    second = await pool.acquire(REQ)
    assert second.endpoint is not first.endpoint
    assert pool.acquire_now(REQ) is None  # all full: the caller awaits acquire() and queues
    waiter = asyncio.ensure_future(pool.acquire(REQ))
    await asyncio.sleep(0)
    assert pool.queued == 1
    first.endpoint.outstanding -= 1  # a slot is free, but a request is queued for it
    assert pool.acquire_now(REQ) is None
    first.endpoint.outstanding += 1
    pool.release(first.endpoint)
    assert (await asyncio.wait_for(waiter, 1)).endpoint is first.endpoint


async def test_a_released_slot_goes_to_the_queued_request_not_a_newcomer():
    """release() wakes the head of the queue; until that waiter runs, a newcomer (or a retry)
    calling acquire_now must not take the freed slot and push the woken one to the back."""
    pool = _pool(["http://a"], max_queue=4)
    held = pool.acquire_now(REQ)
    assert held is not None
    queued = asyncio.ensure_future(pool.acquire(REQ))
    await asyncio.sleep(0)
    assert pool.queued == 1
    pool.release(held.endpoint)  # the queued request is woken; it has not run yet
    assert pool.acquire_now(REQ) is None  # a newcomer arriving now waits its turn
    assert (await asyncio.wait_for(queued, 1)).endpoint.outstanding == 1


async def test_a_waiter_woken_without_a_slot_keeps_its_place():
    """A wake-up that finds no free slot (a membership change, the chained wake after a pick)
    puts the waiter back at the head of the queue, not behind those who came after it."""
    pool = _pool(["http://a"], max_queue=4)
    held = pool.acquire_now(REQ)
    assert held is not None
    first = asyncio.ensure_future(pool.acquire(REQ))
    await asyncio.sleep(0)
    second = asyncio.ensure_future(pool.acquire(REQ))
    await asyncio.sleep(0)
    pool.notify()  # wakes the first; the endpoint is still full
    for _ in range(3):
        await asyncio.sleep(0)
    assert pool.queued == 2 and not first.done()
    pool.release(held.endpoint)
    await asyncio.wait_for(first, 1)
    assert not second.done()
    second.cancel()


async def test_a_retry_that_cannot_use_the_freed_slot_passes_it_to_the_next_waiter():
    """A queued retry excluding the endpoint whose slot was freed goes behind the others and
    wakes the next waiter, which takes the slot at once (not asleep beside a free slot until a
    later release or its timeout); the retry keeps waiting, without spinning."""
    pool = _pool(["http://a", "http://b"], max_queue=4)
    a, b = pool.acquire_now(REQ), pool.acquire_now(REQ)
    assert a is not None and b is not None
    retry = asyncio.ensure_future(pool.acquire(REQ, frozenset({a.endpoint.url})))
    await asyncio.sleep(0)
    plain = asyncio.ensure_future(pool.acquire(REQ))
    await asyncio.sleep(0)
    pool.release(a.endpoint)  # wakes the retry, which cannot use a
    assert (await asyncio.wait_for(plain, 1)).endpoint is a.endpoint
    for _ in range(5):
        await asyncio.sleep(0)
    assert not retry.done() and pool.queued == 1
    pool.release(b.endpoint)
    assert (await asyncio.wait_for(retry, 1)).endpoint is b.endpoint


async def test_a_queued_request_cancelled_woken_or_not_leaves_no_waiter_and_loses_no_slot():
    """A client that goes away while queued, before or after its wake-up, leaves the queue with
    its request cancelled, and the slot it was woken for reaches the next queued request."""
    pool = _pool(["http://a"], max_queue=4)
    held = pool.acquire_now(REQ)
    assert held is not None
    gone = asyncio.ensure_future(pool.acquire(REQ))
    woken_then_gone = asyncio.ensure_future(pool.acquire(REQ))
    last = asyncio.ensure_future(pool.acquire(REQ))
    await asyncio.sleep(0)
    assert pool.queued == 3
    gone.cancel()
    await asyncio.wait([gone])
    assert gone.cancelled() and pool.queued == 2
    pool.release(held.endpoint)  # wakes woken_then_gone, whose client leaves before it runs
    woken_then_gone.cancel()
    await asyncio.wait([woken_then_gone])
    assert woken_then_gone.cancelled()
    decision = await asyncio.wait_for(last, 1)
    assert decision.endpoint.outstanding == 1 and pool.queued == 0


async def test_retries_that_cannot_use_the_freed_slot_do_not_wake_each_other_forever():
    """Two queued retries both excluding the endpoint whose slot was freed: each passes the
    wake-up on once, then both sleep until the next release (they woke each other in turn,
    a busy loop on the event loop until a slot or their timeout came)."""
    pool = _pool(["http://a", "http://b"], max_queue=4)
    a, b = pool.acquire_now(REQ), pool.acquire_now(REQ)
    assert a is not None and b is not None
    looks = 0
    try_pick = pool.try_pick

    def counted(req: RoutingRequest, exclude: frozenset[str]) -> object:
        nonlocal looks
        looks += 1
        return try_pick(req, exclude)

    pool.try_pick = counted  # type: ignore[method-assign,assignment]
    retries = [asyncio.ensure_future(pool.acquire(REQ, frozenset({a.endpoint.url}))) for _ in range(2)]
    await asyncio.sleep(0)
    looks = 0
    pool.release(a.endpoint)
    for _ in range(50):
        await asyncio.sleep(0)
    assert looks == 2 and pool.queued == 2 and not any(r.done() for r in retries)
    pool.release(b.endpoint)
    assert (await asyncio.wait_for(retries[0], 1)).endpoint is b.endpoint
    retries[1].cancel()


def test_a_profile_without_the_healthy_filter_still_routes_only_to_routable_endpoints():
    """try_pick hands the scheduler the routable endpoints with a free slot, so a profile whose
    filters leave out ``healthy`` (here only ``lora-capable``) never gets an unhealthy one:
    before this pass the scheduler saw every endpoint not full or excluded."""
    profile = RoutingProfile(filters=(PluginConfig(type="lora-capable"),))
    clock = FakeClock()
    pool = Pool("m", Scheduler(profile, RoutingState(rng=random.Random(0))),
                lambda: CircuitBreaker(clock, failures=1, open_s=5.0), max_outstanding=4, max_queue=2, queue_s=5.0)
    down, up = pool.set_urls(["http://down", "http://up"])
    up.healthy = True
    for _ in range(20):
        decision = pool.try_pick(REQ, frozenset())
        assert decision is not None and decision.endpoint is up
