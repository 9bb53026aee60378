"""A pool: the endpoints serving one model (or one role of it), its scheduler and wait queue.

Admission is bounded: a request takes a slot on an endpoint below
``max_outstanding``; when every endpoint is full it waits in a FIFO queue of at most
``max_queue`` requests for at most ``queue_s``, and otherwise gets ``OverloadedError``
(429 + Retry-After), so load beyond capacity never piles up without bound.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Container, Sequence

from kubellm.gateway.breaker import CircuitBreaker
from kubellm.gateway.endpoint import Endpoint
from kubellm.gateway.errors import NoEndpointError, OverloadedError
from kubellm.gateway.scheduling.request import RoutingRequest
from kubellm.gateway.scheduling.scheduler import Decision, Scheduler

BreakerFactory = Callable[[], CircuitBreaker]


class Pool:
    def __init__(self, name: str, scheduler: Scheduler, breaker: BreakerFactory, *,
                 max_outstanding: int, max_queue: int, queue_s: float) -> None:
        self.name = name
        self.scheduler = scheduler
        self.endpoints: list[Endpoint] = []
        self._breaker = breaker
        self.max_outstanding = max_outstanding
        self.max_queue = max_queue
        self.queue_s = queue_s
        self._waiters: deque[asyncio.Future[None]] = deque()
        # waiters that re-queued after a wake-up they could not use: passing it on skips them
        # until a slot is released or the pool changes (else two such retries wake each other
        # in turn, a busy loop until their timeout)
        self._passed: set[asyncio.Future[None]] = set()
        self._changed = asyncio.Event()

    # -- membership -------------------------------------------------------------------
    def set_urls(self, urls: Sequence[str]) -> list[Endpoint]:
        """Replace the member list, keeping the state of endpoints that stay; returns new ones."""
        by_url = {e.url: e for e in self.endpoints}
        fresh = [Endpoint(url=u, pool=self.name, breaker=self._breaker(), healthy=False)
                 for u in dict.fromkeys(urls) if u not in by_url]
        self.endpoints = [by_url.get(u) or next(e for e in fresh if e.url == u) for u in dict.fromkeys(urls)]
        self.notify()
        return fresh

    def take_over(self, old: Pool) -> None:
        """Replace *old* on a reload: its endpoints and its wait queue (one queue for both), so
        requests queued there are not passed by this pool's newcomers and are woken by its releases."""
        self.endpoints, self._waiters, self._passed = old.endpoints, old._waiters, old._passed

    def notify(self) -> None:
        """Membership or health changed: wake held requests and queued ones."""
        self._changed.set()
        self._changed = asyncio.Event()
        self._passed.clear()
        self._wake()

    def has_routable(self) -> bool:
        return any(e.routable() for e in self.endpoints)

    async def wait_routable(self, timeout: float) -> bool:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not self.has_routable():
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            try:
                await asyncio.wait_for(self._changed.wait(), remaining)
            except TimeoutError:
                return False
        return True

    # -- admission --------------------------------------------------------------------
    @property
    def queued(self) -> int:
        return len(self._waiters)

    def try_pick(self, req: RoutingRequest, exclude: frozenset[str]) -> Decision | None:
        """A decision among the routable endpoints with a free slot; None when all are full."""
        usable = [e for e in self.endpoints if e.url not in exclude and e.routable()]
        if not usable:
            raise NoEndpointError(f"no ready endpoint for model {req.model!r}")
        limit = self.max_outstanding
        free = [e for e in usable if e.outstanding < limit]
        if not free:
            return None
        return self.scheduler.pick(req, free)

    def acquire_now(self, req: RoutingRequest, exclude: frozenset[str] = frozenset()) -> Decision | None:
        """:meth:`acquire` when it need not wait (nobody queued, a slot free): the decision, its
        slot taken; else None. Callers try it first and await :meth:`acquire` only on None, so a
        request that does not queue costs no coroutine here."""
        decision = None if self._waiters else self.try_pick(req, exclude)
        if decision is not None:
            decision.endpoint.outstanding += 1
        return decision

    async def acquire(self, req: RoutingRequest, exclude: frozenset[str] = frozenset()) -> Decision:
        """Pick an endpoint and take a slot on it, waiting in the bounded queue if all are full."""
        decision = self.acquire_now(req, exclude)
        if decision is None:
            decision = await self._queue(req, exclude)
            decision.endpoint.outstanding += 1
        return decision

    async def _queue(self, req: RoutingRequest, exclude: frozenset[str]) -> Decision:
        if len(self._waiters) >= self.max_queue:
            raise OverloadedError(f"model {req.model!r} is at capacity and its queue is full; retry later",
                                  retry_after=1.0)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.queue_s
        woken = False
        while True:
            fut: asyncio.Future[None] = loop.create_future()
            # woken, but no slot was free for anyone: back to the head, not behind later arrivals
            # (a retry excluding endpoints goes to the back, and wakes the next waiter: the slot
            # freed may be one only others can use)
            if woken and not exclude:
                self._waiters.appendleft(fut)
            else:
                self._waiters.append(fut)
                if woken:
                    self._passed.add(fut)
                    self._wake(skip=self._passed)
            try:  # asyncio.timeout, not wait_for: Python 3.11's wait_for swallows a cancellation once woken
                async with asyncio.timeout(max(0.0, deadline - loop.time())):
                    await fut
            except BaseException as exc:
                self._remove(fut)
                if fut.done() and not fut.cancelled():
                    self._wake()  # woken as it gave up (client gone, timed out): the slot is the next one's
                if isinstance(exc, TimeoutError):
                    raise OverloadedError(f"model {req.model!r} stayed at capacity for {self.queue_s:g}s; "
                                          "retry later", retry_after=max(1.0, self.queue_s / 4)) from None
                raise
            self._remove(fut)  # a woken waiter stays queued until it runs: no newcomer passes it
            woken = True
            decision = self.try_pick(req, exclude)
            if decision is not None:
                self._wake()  # more slots may be free: let the next waiter look too
                return decision

    def _remove(self, fut: asyncio.Future[None]) -> None:
        self._passed.discard(fut)
        try:
            self._waiters.remove(fut)
        except ValueError:
            pass

    def release(self, ep: Endpoint) -> None:
        ep.outstanding -= 1
        if self._passed:  # a slot freed: everyone looks again
            self._passed.clear()
        self._wake()

    def _wake(self, skip: Container[asyncio.Future[None]] = ()) -> None:
        """Wake the first waiter not yet woken (woken ones stay queued until they run), other
        than those in *skip*."""
        for fut in self._waiters:
            if fut not in skip and not fut.done():
                fut.set_result(None)
                return
