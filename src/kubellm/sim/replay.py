"""Run the cost model in virtual time over a list of arrivals (pure, no sleeping).

This is what the engine does in real time, with the clock replaced by the step
times themselves; tests use it to check the model's behaviour, and the fleet
benchmark uses it as the prediction that measured latencies are compared with.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from dataclasses import dataclass, field

from kubellm.sim.costmodel import step_time
from kubellm.sim.errors import SimConfigError
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
    """When one request was sent and arrived, got each token, and how much of its prompt was cached.

    ``sent`` is when its client's clock started: in a closed loop, when a client took it up,
    which can be before it leaves the client and ``send_delay_s`` before it arrives.
    """

    arrival: float
    token_times: list[float] = field(default_factory=list)
    sent: float = 0.0
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
    return _serve(profile, limits, num_blocks, arrivals, _OpenLoop(arrivals), enable_caching)


def simulate_closed_loop(profile: Profile, limits: Limits, num_blocks: int, requests: Sequence[Arrival],
                         clients: int, send_delay_s: float = 0.0, enable_caching: bool = True,
                         client_cost_s: float = 0.0) -> Run:
    """Serve *requests* in order from *clients* clients that each send the next one when theirs finishes.

    This is what ``vllm bench serve --max-concurrency C --request-rate inf`` does. A client
    takes up its next request (its clock starts: ``Timeline.sent``) when its last one ends; the
    clients share one client process that spends *client_cost_s* getting each request out
    (serialising it, writing it to the socket), one request at a time, so the first C requests
    leave *client_cost_s* apart, not at one instant. A request reaches the engine *send_delay_s*
    after it leaves (the API server's share); the requests' own ``at`` is ignored and each
    timeline's arrival is when it reached the engine.
    """
    if clients < 1:
        raise SimConfigError(f"closed loop: clients must be at least 1, got {clients}")
    if client_cost_s < 0:
        raise SimConfigError(f"closed loop: client_cost_s must be at least 0, got {client_cost_s}")
    source = _ClosedLoop(len(requests), clients, send_delay_s, client_cost_s)
    return _serve(profile, limits, num_blocks, requests, source, enable_caching)


def serial_sends(count: int, client_cost_s: float) -> list[float]:
    """When *count* requests taken up together at 0 leave one process that spends *client_cost_s* on each."""
    return [client_cost_s * (n + 1) for n in range(count)]


class _OpenLoop:
    """Arrivals at their own times."""

    def __init__(self, arrivals: Sequence[Arrival]) -> None:
        self._times = [a.at for a in arrivals]
        self._order = sorted(range(len(arrivals)), key=lambda i: self._times[i])
        self._nxt = 0

    def pending(self) -> bool:
        return self._nxt < len(self._order)

    def next_at(self) -> float:
        return self._times[self._order[self._nxt]]

    def due(self, t: float) -> list[tuple[int, float, float]]:
        out = []
        while self.pending() and self.next_at() <= t:
            out.append((self._order[self._nxt], self.next_at(), self.next_at()))
            self._nxt += 1
        return out

    def finished(self, t: float) -> None:
        """Open-loop arrivals do not wait for anything."""


class _ClosedLoop:
    """Requests sent in order by a fixed number of clients, each waiting for its previous answer.

    The clients share one process that gets requests out one at a time, ``client_cost_s`` each.
    """

    def __init__(self, count: int, clients: int, send_delay_s: float, client_cost_s: float) -> None:
        self._count, self._delay, self._cost, self._nxt = count, send_delay_s, client_cost_s, 0
        self._free = [0.0] * clients  # when each idle client is ready to send its next request (a heap)
        self._busy_until = 0.0  # when the client process has got its last request out

    def pending(self) -> bool:
        return self._nxt < self._count

    def _next_send(self) -> float:
        return max(self._free[0], self._busy_until) + self._cost

    def next_at(self) -> float:
        return self._next_send() + self._delay

    def due(self, t: float) -> list[tuple[int, float, float]]:
        """(request, when its client took it up, when it reaches the engine) for those that reach it by *t*."""
        out = []
        while self.pending() and self._free and self.next_at() <= t:
            self._busy_until = self._next_send()
            out.append((self._nxt, heapq.heappop(self._free), self._busy_until + self._delay))
            self._nxt += 1
        return out

    def finished(self, t: float) -> None:
        heapq.heappush(self._free, t)


def _serve(profile: Profile, limits: Limits, num_blocks: int, arrivals: Sequence[Arrival],
           source: _OpenLoop | _ClosedLoop, enable_caching: bool) -> Run:
    sched = Scheduler(limits, BlockPool(num_blocks, limits.block_size, enable_caching),
                      async_scheduling=profile.async_scheduling)
    timelines = [Timeline(a.at, sent=a.at) for a in arrivals]
    by_req: dict[int, Timeline] = {}
    run = Run(timelines)
    t = 0.0
    while source.pending() or sched.has_work():
        for i, sent, at in source.due(t):
            timelines[i].arrival, timelines[i].sent = at, sent
            _admit(sched, arrivals[i], at, timelines[i], by_req, str(i))
        if not sched.has_work():
            t = source.next_at()
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
        for _ in result.finished:
            source.finished(end)
        run.steps += 1
        t = end
    run.end = t
    run.preemptions = sched.num_preemptions
    run.final_kv_usage = sched.pool.usage()
    return run


def _admit(sched: Scheduler, a: Arrival, at: float, timeline: Timeline, by_req: dict[int, Timeline],
           req_id: str) -> None:
    req = SchedRequest(req_id, list(a.prompt_ids) + [0] * a.output_tokens, len(a.prompt_ids),
                       a.output_tokens, at, a.lora)
    by_req[id(req)] = timeline
    sched.add(req)


def _observe(run: Run, sched: Scheduler, batch_tokens: int) -> None:
    run.max_kv_usage = max(run.max_kv_usage, sched.pool.usage())
    run.max_waiting = max(run.max_waiting, len(sched.waiting))
    run.max_running = max(run.max_running, len(sched.running))
    run.max_batch_tokens = max(run.max_batch_tokens, batch_tokens)
