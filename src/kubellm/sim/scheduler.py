"""Continuous batching as vLLM V1 schedules it (pure: the caller passes the time).

Each step has a token budget (``max_num_batched_tokens``). Running requests are served
first, in order: a decoding request needs one token, a request still in prefill gets a
chunk of what is left of its prompt (chunked prefill). When a running request cannot get
a KV block for its new tokens, the most recently admitted running request is preempted
(recompute: its blocks are freed, its progress reset, and it goes back to the front of
the waiting queue). Then, if nothing was preempted, waiting requests are admitted in
FIFO order while budget, ``max_num_seqs`` and free blocks allow; a request that does not
fit blocks the queue behind it. A newly admitted request first takes the longest prefix
of its full blocks found in the prefix cache.

A request's token count is its prompt plus what it generated; a new token is sampled in
the step that computes the last known token.

With asynchronous scheduling (vLLM's default since 0.14; ``async_scheduling``) the engine
plans step n+1 as soon as step n is launched, so step n+1 takes only the requests that had
arrived when step n started: a request that arrives while step n runs is first scheduled in
step n+2. A step planned that way with nothing in it is not run; the engine then plans when
step n ends, as an idle engine does at once (:func:`admission_cutoff`).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from kubellm.sim.costmodel import StepShape, chunk_shape
from kubellm.kvhash import DEFAULT_SEED, BlockHasher, ExtraKeys, event_hash
from kubellm.sim.kvcache import BlockPool


class SchedRequest:
    """Scheduling state of one request."""

    __slots__ = ("req_id", "tokens", "num_prompt", "max_output", "num_output", "num_computed",
                 "blocks", "hashes", "last_hash", "n_cached_blocks", "extra", "lora_id", "arrival", "ready_at", "first_scheduled",
                 "first_token", "last_token", "num_cached", "released_blocks", "remote_prefill", "finished", "preempted")

    def __init__(self, req_id: str, tokens: list[int], num_prompt: int, max_output: int, arrival: float,
                 lora: str | None = None, lora_id: int | None = None, ready_at: float | None = None) -> None:
        self.req_id = req_id
        self.tokens = tokens  # prompt ids followed by every output id the request will emit
        self.num_prompt = num_prompt
        self.max_output = max_output
        self.num_output = 0
        self.num_computed = 0
        self.blocks: list[int] = []
        self.hashes: list[int] = []  # full blocks' hashes as KV events carry them
        self.last_hash: bytes | None = None  # the last full block's whole hash, parent of the next
        self.n_cached_blocks = 0  # leading blocks already named in the pool
        # the simulator serves an adapter from a path equal to its name (its /v1/models root)
        self.extra = ExtraKeys(lora_name=lora, lora_path=lora or "")
        self.lora_id = lora_id
        self.arrival = arrival
        self.ready_at = ready_at  # KV arriving from a prefill instance: usable from then
        self.first_scheduled: float | None = None
        self.first_token: float | None = None
        self.last_token: float | None = None
        self.num_cached = 0
        self.released_blocks: list[int] = []  # the blocks it held when it finished
        self.remote_prefill = ready_at is not None
        self.finished = False
        self.preempted = 0

    @property
    def num_tokens(self) -> int:
        return self.num_prompt + self.num_output


@dataclass(slots=True)
class StepPlan:
    """The requests of one step and how many new tokens each computes."""

    start: float
    scheduled: list[tuple[SchedRequest, int]] = field(default_factory=list)
    preempted: list[SchedRequest] = field(default_factory=list)
    shape: StepShape = StepShape(0, 0, 0, 0.0)


@dataclass(slots=True)
class StepResult:
    """What a step produced: requests that got a token, and those that finished."""

    end: float
    produced: list[SchedRequest] = field(default_factory=list)
    finished: list[SchedRequest] = field(default_factory=list)
    prefix_queries: int = 0
    prefix_hits: int = 0


@dataclass(frozen=True, slots=True)
class Limits:
    max_num_seqs: int
    max_num_batched_tokens: int
    block_size: int


def admission_cutoff(start: float, last_step: tuple[float, float] | None, async_scheduling: bool) -> float:
    """The latest arrival a step starting at *start* may take.

    *last_step* is (start, end) of the step run before it. With async scheduling, a step that
    follows a running step back to back was planned when that step started; otherwise
    (scheduling in step with the GPU, or an engine that was idle) it is planned at its start.
    """
    if async_scheduling and last_step is not None and last_step[1] == start:
        return last_step[0]
    return start


class Scheduler:
    """FIFO waiting queue, running batch, KV block pool."""

    def __init__(self, limits: Limits, pool: BlockPool, hasher: BlockHasher | None = None,
                 async_scheduling: bool = False) -> None:
        self.limits = limits
        self.async_scheduling = async_scheduling
        self._last_step: tuple[float, float] | None = None  # (start, end) of the last step run
        self.pool = pool
        self.hasher = hasher or BlockHasher("sha256", DEFAULT_SEED, limits.block_size)
        self.waiting: deque[SchedRequest] = deque()
        self.running: list[SchedRequest] = []
        self.num_preemptions = 0
        self._queries = 0
        self._hits = 0

    def add(self, req: SchedRequest) -> None:
        self.waiting.append(req)

    def has_work(self) -> bool:
        return bool(self.running or self.waiting)

    def next_runnable(self, now: float) -> float | None:
        """When a waiting request next becomes schedulable (arrived, KV transferred), if later than now."""
        times = [max(r.arrival, r.ready_at or r.arrival) for r in self.waiting]
        later = [x for x in times if x > now]
        return min(later) if later else None

    # one step ------------------------------------------------------------------------------
    def schedule(self, now: float) -> StepPlan:
        """The step starting at *now*: running requests, then waiting ones that had arrived when it was planned."""
        cutoff = admission_cutoff(now, self._last_step, self.async_scheduling)
        plan = self._plan(now, cutoff)
        if not plan.scheduled and not plan.preempted and cutoff < now:
            plan = self._plan(now, now)  # nothing was planned ahead: the free engine plans now
        return plan

    def _plan(self, now: float, cutoff: float) -> StepPlan:
        plan = StepPlan(start=now)
        budget = self._schedule_running(plan, self.limits.max_num_batched_tokens)
        if not plan.preempted:
            self._schedule_waiting(plan, budget, now, cutoff)
        plan.shape = _shape(plan.scheduled)
        return plan

    def _schedule_running(self, plan: StepPlan, budget: int) -> int:
        i = 0
        while i < len(self.running) and budget > 0:
            req = self.running[i]
            num_new = min(req.num_tokens - req.num_computed, budget)
            if not self._grow(req, num_new, plan):
                break  # req itself was preempted: everything after it already was
            plan.scheduled.append((req, num_new))
            budget -= num_new
            i += 1
        return budget

    def _grow(self, req: SchedRequest, num_new: int, plan: StepPlan) -> bool:
        """Give *req* blocks for *num_new* tokens, preempting from the back until it fits."""
        need = self._blocks_needed(req, num_new)
        while True:
            got = self.pool.allocate(need) if need else []
            if got is not None:
                req.blocks.extend(got)
                return True
            victim = self.running.pop()
            self._preempt(victim, plan)
            if victim is req:
                return False

    def _preempt(self, req: SchedRequest, plan: StepPlan) -> None:
        self.pool.free(req.blocks)
        req.blocks = []
        req.n_cached_blocks = 0
        req.num_computed = 0
        req.preempted += 1
        self.num_preemptions += 1
        plan.preempted.append(req)
        self.waiting.appendleft(req)

    def _blocks_needed(self, req: SchedRequest, num_new: int) -> int:
        bs = self.limits.block_size
        return max(0, -(-(req.num_computed + num_new) // bs) - len(req.blocks))

    def _schedule_waiting(self, plan: StepPlan, budget: int, now: float, cutoff: float) -> None:
        skipped: list[SchedRequest] = []
        while self.waiting and budget > 0 and len(self.running) < self.limits.max_num_seqs:
            req = self.waiting[0]
            if req.arrival > cutoff:
                break  # arrived after this step was planned (the engine may be catching up)
            if req.ready_at is not None and req.ready_at > now:
                skipped.append(self.waiting.popleft())  # KV still in flight: let others pass
                continue
            num_new = self._admit(req, budget)
            if num_new is None:
                break
            self.waiting.popleft()
            self.running.append(req)
            if req.first_scheduled is None:
                req.first_scheduled = now
            plan.scheduled.append((req, num_new))
            budget -= num_new
        self.waiting.extendleft(reversed(skipped))

    def _admit(self, req: SchedRequest, budget: int) -> int | None:
        """Take prefix-cache hits and blocks for a waiting request; None if it does not fit."""
        hit = self._prefix_hit(req)
        base = req.num_prompt - 1 if req.remote_prefill else len(hit) * self.limits.block_size
        num_new = min(req.num_tokens - base, budget)
        need = -(-(base + num_new) // self.limits.block_size) - len(hit)
        if need > self.pool.num_free - self.pool.num_reclaimable(hit):
            return None
        self.pool.touch(hit)
        req.blocks = hit + (self.pool.allocate(need) or [])
        req.n_cached_blocks = len(hit)
        req.num_computed = base
        if req.first_scheduled is None:  # count the query once, as vLLM counts per request
            self._queries += req.num_tokens
            self._hits += len(hit) * self.limits.block_size
            req.num_cached = len(hit) * self.limits.block_size
        req.remote_prefill = False
        return num_new

    def _prefix_hit(self, req: SchedRequest) -> list[int]:
        if req.remote_prefill:
            return []
        bs = self.limits.block_size
        full = (req.num_tokens - 1) // bs  # at least one token is always computed
        self._extend_hashes(req, full)
        return self.pool.lookup(req.hashes[:full])

    def _extend_hashes(self, req: SchedRequest, upto: int) -> None:
        if upto <= len(req.hashes):
            return
        new = self.hasher.hashes(req.tokens[:upto * self.limits.block_size], req.extra, req.last_hash,
                                 start_block=len(req.hashes))
        req.last_hash = new[-1]
        req.hashes.extend(event_hash(h) for h in new)

    # after the step's time has passed -----------------------------------------------------
    def complete(self, plan: StepPlan, end: float) -> StepResult:
        result = StepResult(end=end, prefix_queries=self._queries, prefix_hits=self._hits)
        if plan.scheduled:
            self._last_step = (plan.start, end)
        self._queries = self._hits = 0
        for req, num_new in plan.scheduled:
            if req.finished or num_new == 0:
                continue
            req.num_computed += num_new
            self._cache_blocks(req)
            if req.num_computed >= req.num_tokens:
                self._emit(req, end, result)
        if result.finished:
            done = {id(r) for r in result.finished}
            self.running = [r for r in self.running if id(r) not in done]
        return result

    def _emit(self, req: SchedRequest, end: float, result: StepResult) -> None:
        req.num_output += 1
        if req.first_token is None:
            req.first_token = end
        result.produced.append(req)
        if req.num_output >= req.max_output:
            req.finished = True
            self.pool.free(req.blocks)
            req.released_blocks, req.blocks = req.blocks, []
            result.finished.append(req)
        req.last_token = end

    def _cache_blocks(self, req: SchedRequest) -> None:
        bs = self.limits.block_size
        full = min(req.num_computed // bs, len(req.blocks))
        start = req.n_cached_blocks
        if full <= start:
            return
        self._extend_hashes(req, full)
        req.n_cached_blocks = full
        for i in range(start, full):
            parent = req.hashes[i - 1] if i else None
            self.pool.cache_full(req.blocks[i], req.hashes[i], parent, req.tokens[i * bs:(i + 1) * bs],
                                 req.lora_id)

    def abort(self, req: SchedRequest) -> None:
        """Drop a request wherever it is (client went away)."""
        if req.finished:
            return
        req.finished = True
        if req in self.running:
            self.running.remove(req)
        elif req in self.waiting:
            self.waiting.remove(req)
        self.pool.free(req.blocks)
        req.blocks = []


def _shape(scheduled: list[tuple[SchedRequest, int]]) -> StepShape:
    new = kv = 0
    pairs = 0.0
    for req, num_new in scheduled:
        r_kv, r_pairs = chunk_shape(req.num_computed, num_new)
        new += num_new
        kv += r_kv
        pairs += r_pairs if num_new > 1 else 0.0
    return StepShape(new, len(scheduled), kv, pairs)
