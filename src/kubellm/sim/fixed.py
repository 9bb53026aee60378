"""Fixed-latency engine: every request sees exactly TTFT and TPOT, whatever the load.

Used by tests of other components that need a known latency. Token ``k`` (1-based)
of a request that arrived at ``t0`` is ready at ``t0 + ttft + (k - 1) * tpot``;
timers aim at those absolute times (on ``time.monotonic``, finer than uvloop's
millisecond loop clock) so lateness does not accumulate. A request
that does not stream gets one timer, at its last token.
"""

from __future__ import annotations

import asyncio
import time

from kubellm.sim.engine_api import GenRequest
from kubellm.sim.metrics import EngineStats
from kubellm.sim.progress import Progress


class FixedLatencyEngine:
    """An engine with constant TTFT/TPOT (seconds of wall time after ``time_scale``)."""

    def __init__(self, ttft_s: float, tpot_s: float, stats: EngineStats, time_scale: float = 1.0) -> None:
        """*ttft_s*/*tpot_s* are model seconds; wall time runs *time_scale* times faster."""
        self.ttft = ttft_s / time_scale
        self.tpot = tpot_s / time_scale
        self._model_ttft = ttft_s
        self._model_tpot = tpot_s
        self.stats = stats
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timers: dict[int, asyncio.TimerHandle] = {}

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()

    async def stop(self) -> None:
        for handle in self._timers.values():
            handle.cancel()
        self._timers.clear()

    def submit(self, req: GenRequest, arrival: float | None = None) -> Progress:
        assert self._loop is not None, "start() the engine first"
        now = time.monotonic() if arrival is None else min(arrival, time.monotonic())
        prog = Progress(now)
        self.stats.num_running += 1
        self.stats.prompt_tokens += len(req.prompt_ids)
        self.stats.prompt_len.observe(len(req.prompt_ids))
        self.stats.queue.observe(0.0)
        first = 1 if req.stream else req.num_output
        self._schedule(prog, req, max(first, 1))
        return prog

    def _schedule(self, prog: Progress, req: GenRequest, k: int) -> None:
        assert self._loop is not None
        at = prog.arrival + self.ttft + (k - 1) * self.tpot
        self._timers[id(prog)] = self._loop.call_later(at - time.monotonic(), self._tick, prog, req, k)

    def _tick(self, prog: Progress, req: GenRequest, k: int) -> None:
        done = k >= req.num_output
        at = prog.arrival + self.ttft + (k - 1) * self.tpot
        prog.advance(k, at, finished=done)
        if done:
            self._timers.pop(id(prog), None)
            self._finish(prog, req)
        else:
            self._schedule(prog, req, k + 1 if req.stream else req.num_output)

    def _finish(self, prog: Progress, req: GenRequest) -> None:
        s = self.stats
        n = req.num_output
        s.num_running -= 1
        s.generation_tokens += n
        s.gen_len.observe(n)
        ttft, tpot = self._model_ttft, self._model_tpot  # metrics are in model seconds
        s.ttft.observe(ttft)
        if n > 1:
            s.itl.observe(tpot, n - 1)
        e2e = ttft + (n - 1) * tpot
        s.e2e.observe(e2e)
        s.inference.observe(e2e)
        s.prefill.observe(ttft)
        s.decode.observe(e2e - ttft)
        s.success[req.finish_reason] = s.success.get(req.finish_reason, 0) + 1

    def abort(self, progress: Progress) -> None:
        handle = self._timers.pop(id(progress), None)
        if handle is None:
            return
        handle.cancel()
        progress.aborted = True
        self.stats.num_running -= 1
        self.stats.success["abort"] += 1
