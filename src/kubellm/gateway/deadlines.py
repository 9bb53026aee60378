"""``asyncio.timeout(delay)`` for many requests that share one fixed *delay*, at less cost.

Each ``asyncio.timeout`` arms and cancels an event-loop timer (uvloop: a libuv timer allocated
and freed) and runs two coroutines; on the gateway's path that was about 4 us per request
(docs/gateway.md). With one delay for every request, deadlines come due in the order they
were set, so :class:`Deadlines` keeps them in a FIFO queue with a single loop timer armed for
the oldest one: entering a scope appends to the queue, leaving it marks the entry done and
drops finished entries from the head. When the timer fires, every scope past its deadline has
its task cancelled, and that scope's exit turns the cancellation into ``TimeoutError``, as
``asyncio.timeout`` does (a cancellation from elsewhere passes through unchanged). Finished
entries behind a long-running one are compacted away, so the queue stays within twice the
scopes open plus a constant.
"""

from __future__ import annotations

import asyncio
from collections import deque
from types import TracebackType

_COMPACT_SLACK = 64


class _Scope:
    __slots__ = ("_owner", "deadline", "task", "cancelling", "done", "expired")

    def __init__(self, owner: Deadlines, deadline: float, task: asyncio.Task[object]) -> None:
        self._owner = owner
        self.deadline = deadline
        self.task = task
        self.cancelling = task.cancelling()
        self.done = False
        self.expired = False

    def __enter__(self) -> _Scope:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.done = True
        self._owner._finished()
        if self.expired and self.task.uncancel() <= self.cancelling and exc_type is asyncio.CancelledError:
            raise TimeoutError from exc


class Deadlines:
    """``with deadlines.scope():`` times out what runs inside after ``delay`` seconds, raising
    ``TimeoutError`` in the task (a synchronous context manager: entering and leaving costs no
    coroutine). Only inside a running task."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self._queue: deque[_Scope] = deque()
        self._open = 0
        self._timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def scope(self) -> _Scope:
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("Deadlines.scope() must be used inside a task")
        loop = task.get_loop()
        if loop is not self._loop:  # first use, or a new event loop: nothing carries over
            self._loop, self._queue, self._open, self._timer = loop, deque(), 0, None
        entry = _Scope(self, loop.time() + self.delay, task)
        self._queue.append(entry)
        self._open += 1
        if self._timer is None:
            self._timer = loop.call_at(entry.deadline, self._expire)
        return entry

    def __len__(self) -> int:
        """Entries queued, finished ones not yet dropped included (bounded, see the module)."""
        return len(self._queue)

    def _finished(self) -> None:
        self._open -= 1
        queue = self._queue
        while queue and queue[0].done:
            queue.popleft()
        if len(queue) > 2 * self._open + _COMPACT_SLACK:  # finished ones behind a long-running one
            self._queue = deque(e for e in queue if not e.done)

    def _expire(self) -> None:
        """The timer: cancel the tasks of scopes past their deadline, re-arm for the next one."""
        self._timer = None
        assert self._loop is not None
        now = self._loop.time()
        queue = self._queue
        while queue and (queue[0].done or queue[0].deadline <= now):
            entry = queue.popleft()
            if not entry.done and not entry.expired:
                entry.expired = True
                entry.task.cancel()  # off the queue now; its exit still counts it as finished
        if queue:
            self._timer = self._loop.call_at(queue[0].deadline, self._expire)
