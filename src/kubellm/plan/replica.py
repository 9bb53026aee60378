"""One engine replica in virtual time: continuous batching over the simulator's cost model.

The simulator's own replay (:mod:`kubellm.sim.replay`) schedules every token of every
request, which is exact but far too slow for a day of a fleet. This model keeps what
decides latency and drops per-token bookkeeping:

- a step that admits waiting requests prefills their whole prompts (chunked prefill's
  chunks summed into one step) while every running request decodes one token;
- between admissions, runs of identical decode steps are taken at once: ``n`` steps of
  ``S`` sequences cost ``n`` times the cost model's step time at the run's mean KV length,
  ending at the next completion, at ``until`` (so a new arrival joins at a step boundary)
  or after ``MAX_RUN`` steps (so the KV length the step time reads stays fresh);
- running requests all advance one token per step, so one counter and a heap of the
  counter values at which each finishes replace per-request state;
- the client sees every token ``api_server_s`` later than the engine makes it (the
  profile's API-server time, see docs/sim.md);
- KV admission is vLLM's optimistic one (the prompt must fit now); preemption on
  overflow is not modelled (``tests/unit/plan`` checks the model against the replay).

Step times come from :func:`kubellm.sim.costmodel.step_time` and the named
:class:`~kubellm.sim.profiles.Profile`, so calibration of the simulator carries over.
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from collections.abc import Sequence

from kubellm.sim.costmodel import StepShape, step_time
from kubellm.sim.profiles import Profile

MAX_RUN = 256


class Results:
    """Per-request outcomes, indexed like the trace: first-token and last-token times."""

    def __init__(self, n: int) -> None:
        self.first = [math.nan] * n
        self.done = [math.nan] * n


class Replica:
    """An engine that became ready at ``ready_at`` and serves what the router gives it."""

    def __init__(self, profile: Profile, prompts: Sequence[int], outputs: Sequence[int],
                 results: Results, ready_at: float) -> None:
        self.p = profile
        self.prompts, self.outputs, self.results = prompts, outputs, results
        self.t = ready_at
        self.waiting: deque[int] = deque()
        self.running = 0
        self.kv = 0  # tokens held in KV by running requests
        self.counter = 0  # decode steps taken: every running request gained one token per step
        self.finishes: list[tuple[int, int]] = []  # (counter value when it finishes, request)
        self.busy = 0.0  # seconds spent computing (what DCGM's GPU utilisation samples)
        self.capacity = profile.num_gpu_blocks * 16

    @property
    def in_flight(self) -> int:
        return self.running + len(self.waiting)

    @property
    def kv_usage(self) -> float:
        return min(1.0, self.kv / self.capacity)

    def add(self, i: int, now: float) -> None:
        """Request *i* arrives at *now* (the replica is first brought up to *now*)."""
        self.advance(now)
        self.waiting.append(i)

    def advance(self, until: float) -> None:
        """Run steps until one ends at or after *until* (a started step always completes)."""
        while self.t < until:
            if not self.waiting and not self.running:
                self.t = until
                return
            batch = self._admissible()
            if batch:
                self._prefill_step(batch)
            else:
                self._decode_run(until)

    def _admissible(self) -> list[int]:
        budget = self.p.max_num_batched_tokens - self.running
        batch: list[int] = []
        tokens = 0
        while self.waiting and self.running + len(batch) < self.p.max_num_seqs:
            p = self.prompts[self.waiting[0]]
            if batch and tokens + p > budget:
                break
            if (self.running or batch) and self.kv + tokens + p > self.capacity:
                break  # waits for running requests to free KV (optimistic admission, as vLLM)
            batch.append(self.waiting.popleft())
            tokens += p
        return batch

    def _prefill_step(self, batch: list[int]) -> None:
        prompts = [self.prompts[i] for i in batch]
        new = sum(prompts)
        shape = StepShape(self.running + new, self.running + len(batch), self.kv + self.running + new,
                          sum(p * (p + 1) / 2 for p in prompts))
        d = step_time(shape, self.p)
        self._tick(d, 1)
        self.kv += new + len(batch)
        seen = self.t + self.p.api_server_s  # what the client sees lags by the API server's time
        for i in batch:
            self.results.first[i] = seen
            if self.outputs[i] <= 1:
                self.results.done[i] = seen
                self.kv -= self.prompts[i] + 1
            else:
                heapq.heappush(self.finishes, (self.counter + self.outputs[i] - 1, i))
                self.running += 1

    def _decode_run(self, until: float) -> None:
        s = self.running
        d0 = step_time(StepShape(s, s, self.kv + s, 0.0), self.p)
        n = min(self.finishes[0][0] - self.counter, MAX_RUN, max(1, math.ceil((until - self.t) / d0)))
        d = step_time(StepShape(s, s, self.kv + s * (n + 1) // 2, 0.0), self.p)
        self._tick(d * n, n)

    def _tick(self, seconds: float, steps: int) -> None:
        """Advance the clock by *steps* steps taking *seconds*; settle what finished."""
        self.t += seconds
        self.busy += seconds
        self.counter += steps
        self.kv += self.running * steps
        while self.finishes and self.finishes[0][0] <= self.counter:
            _, i = heapq.heappop(self.finishes)
            self.results.done[i] = self.t + self.p.api_server_s
            self.running -= 1
            self.kv -= self.prompts[i] + self.outputs[i]
