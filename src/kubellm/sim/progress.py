"""What an engine tells the HTTP layer about one request as it runs.

The engine (cost model or fixed latency) advances ``num_out`` and sets ``finished``;
the handler awaits :meth:`Progress.wait` and sends whatever became available since its
last write, so a handler that falls behind sends several tokens in one write instead of
waking once per token.
"""

from __future__ import annotations

import asyncio
from typing import Any


class Progress:
    """Output progress of one request, shared by an engine and one HTTP handler."""

    __slots__ = ("num_out", "finished", "aborted", "arrival", "first_token_at",
                 "finished_at", "num_cached_tokens", "kv_transfer_params", "handle", "_waiter")

    def __init__(self, arrival: float) -> None:
        self.num_out = 0
        self.finished = False
        self.aborted = False
        self.arrival = arrival
        self.first_token_at: float | None = None
        self.finished_at: float | None = None
        self.num_cached_tokens = 0
        self.kv_transfer_params: dict[str, Any] | None = None
        self.handle: Any = None  # the engine's own state of this request
        self._waiter: asyncio.Future[None] | None = None

    def advance(self, num_out: int, now: float, finished: bool = False) -> None:
        """Record that *num_out* tokens are available (called by the engine)."""
        if self.first_token_at is None and num_out > 0:
            self.first_token_at = now
        self.num_out = num_out
        if finished:
            self.finished = True
            self.finished_at = now
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def wait(self) -> None:
        """Return once the engine advanced this request (or finished it)."""
        if self.finished:
            return
        self._waiter = asyncio.get_running_loop().create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None
