"""Run the cost model in virtual time over a list of arrivals (pure, no sleeping).

This is what the engine does in real time, with the clock replaced by the step
times themselves; tests use it to check the model's behaviour, and the fleet
benchmark uses it as the prediction that measured latencies are compared with.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from kubellm.sim.costmodel import step_time
from kubellm.sim.kvcache import BlockPool
from kubellm.sim.profiles import Profile
from kubellm.sim.scheduler import Limits, Scheduler, SchedRequest


@dataclass(frozen=True, slots=True)
class Arrival:
    """A request arriving at ``at`` seconds: its prompt and how many tokens it generates."""

    at: float
    prompt_ids: Sequence[int]
    output_tokens: int
    lora: str | None = None


@dataclass(slots=True)
class Timeline:
    """When one request arrived, got each token, and how much of its prompt was cached."""

    arrival: float
    token_times: list[float] = field(default_factory=list)
    num_cached: int = 0
    preempted: int = 0

    @property
    def ttft(self) -> float:
        return self.token_times[0] - self.arrival

    @property
    def tpot(self) -> float:
        """Mean time per output token after the first (0 for one-token requests)."""
        n = len(self.token_times)
        return (self.token_times[-1] - self.token_times[0]) / (n - 1) if n > 1 else 0.0


@dataclass(slots=True)
class Run:
    """Timelines in arrival order, plus what the engine went through."""

    timelines: list[Timeline]
    steps: int = 0
    end: float = 0.0
    max_kv_usage: float = 0.0
    max_waiting: int = 0
    max_batch_tokens: int = 0
    max_running: int = 0
    preemptions: int = 0
    prefix_queries: int = 0
    prefix_hits: int = 0
    final_kv_usage: float = 0.0


def simulate(profile: Profile, limits: Limits, num_blocks: int, arrivals: Sequence[Arrival],
             enable_caching: bool = True) -> Run:
    """Serve *arrivals* on one engine and return every request's token times."""
    order = sorted(range(len(arrivals)), key=lambda i: arrivals[i].at)
    sched = Scheduler(limits, BlockPool(num_blocks, limits.block_size, enable_caching))
    timelines = [Timeline(a.at) for a in arrivals]
    by_req: dict[int, Timeline] = {}
    run = Run(timelines)
    t, nxt = 0.0, 0
    while nxt < len(order) or sched.has_work():
        while nxt < len(order) and arrivals[order[nxt]].at <= t:
            nxt = _admit(sched, arrivals, order[nxt], timelines, by_req, nxt)
        if not sched.has_work():
            t = arrivals[order[nxt]].at
            continue
        plan = sched.schedule(t)
        _observe(run, sched, plan.shape.new_tokens)
        end = t + step_time(plan.shape, profile)
        result = sched.complete(plan, end)
        run.prefix_queries += result.prefix_queries
        run.prefix_hits += result.prefix_hits
        for req in result.produced:
            tl = by_req[id(req)]
            tl.token_times.append(end)
            tl.num_cached, tl.preempted = req.num_cached, req.preempted
        run.steps += 1
        t = end
    run.end = t
    run.preemptions = sched.num_preemptions
    run.final_kv_usage = sched.pool.usage()
    return run


def _admit(sched: Scheduler, arrivals: Sequence[Arrival], i: int, timelines: list[Timeline],
           by_req: dict[int, Timeline], nxt: int) -> int:
    a = arrivals[i]
    req = SchedRequest(str(i), list(a.prompt_ids) + [0] * a.output_tokens, len(a.prompt_ids),
                       a.output_tokens, a.at, a.lora)
    by_req[id(req)] = timelines[i]
    sched.add(req)
    return nxt + 1


def _observe(run: Run, sched: Scheduler, batch_tokens: int) -> None:
    run.max_kv_usage = max(run.max_kv_usage, sched.pool.usage())
    run.max_waiting = max(run.max_waiting, len(sched.waiting))
    run.max_running = max(run.max_running, len(sched.running))
    run.max_batch_tokens = max(run.max_batch_tokens, batch_tokens)
