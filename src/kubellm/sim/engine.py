"""The cost-model engine: drives the pure scheduler in real (scaled) time.

One asyncio task per engine runs steps back to back: schedule at the step's start,
sleep until its predicted end, then apply it. Step ends are absolute times on a model
clock anchored to the event loop's clock, so a late wake-up does not push later steps
back (the next step starts when the previous one should have ended). Streaming requests
are advanced every step; the others only when they finish, so a non-streamed request
costs no wake-ups while it runs.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from kubellm.kvhash import BlockHasher, engine_seed
from kubellm.sim.config import SimConfig
from kubellm.sim.costmodel import kv_transfer_time, step_time
from kubellm.sim.engine_api import GenRequest
from kubellm.sim.errors import RequestError
from kubellm.sim.kvcache import BlockPool, KvEvent
from kubellm.sim.metrics import EngineStats
from kubellm.sim.profiles import Profile
from kubellm.sim.progress import Progress
from kubellm.sim.scheduler import Limits, Scheduler, SchedRequest, StepPlan, StepResult

MAX_LAG_S = 0.25  # beyond this much lateness the model clock re-anchors instead of bursting


class CostModelEngine:
    """An engine whose timing is the cost model of a profile."""

    def __init__(self, config: SimConfig, profile: Profile, limits: dict[str, int], stats: EngineStats,
                 index: int = 0, events: list[KvEvent] | None = None) -> None:
        self.config = config
        self.profile = profile
        self.stats = stats
        self.index = index
        self.events = events
        self.pool = BlockPool(limits["num_gpu_blocks"], config.block_size, config.enable_prefix_caching, events)
        hasher = BlockHasher(config.prefix_caching_hash_algo,
                             engine_seed(config.prefix_caching_hash_algo, config.hash_seed), config.block_size)
        self.scheduler = Scheduler(Limits(limits["max_num_seqs"], limits["max_num_batched_tokens"],
                                          config.block_size), self.pool, hasher, config.async_scheduling)
        self._scale = config.time_scale
        self._progress: dict[int, tuple[Progress, GenRequest]] = {}
        self._lora_ids: dict[str, int] = {}
        self._lora_active = 0
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.on_step: list[Any] = []  # callbacks after each step (KV-event publisher)

    # model clock: model seconds = monotonic seconds * time_scale. uvloop's loop.time() is
    # cached per loop iteration at millisecond resolution, too coarse for 7 ms steps, so the
    # clock reads time.monotonic() and only timers are converted to loop time.
    def _now(self) -> float:
        return time.monotonic() * self._scale

    def _wall(self, model_t: float) -> float:
        return model_t / self._scale

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._task = self._loop.create_task(self._run(), name=f"sim-engine-{self.index}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None

    # requests ------------------------------------------------------------------------------
    def submit(self, req: GenRequest, arrival: float | None = None) -> Progress:
        self._check_fits(req)
        now = self._now() if arrival is None else min(arrival * self._scale, self._now())
        prog = Progress(self._wall(now))
        ready_at = None
        if req.kv_transfer_in is not None and self.config.kv_role in ("decode", "both"):
            ready_at = now + kv_transfer_time(len(req.prompt_ids), self.profile, self.config.kv_transfer_gbps * 1e9)
        lora_id = self._lora_id(req.lora)
        sreq = SchedRequest(req.request_id, req.prompt_ids + req.output_ids, len(req.prompt_ids),
                            max(req.num_output, 1), now, req.lora, lora_id, ready_at)
        self._progress[id(sreq)] = (prog, req)
        prog.handle = sreq
        if req.lora:
            self._lora_active += 1
        self.scheduler.add(sreq)
        self.stats.num_waiting = len(self.scheduler.waiting)
        self._wake.set()
        return prog

    def _check_fits(self, req: GenRequest) -> None:
        need = -(-(len(req.prompt_ids) + req.num_output) // self.config.block_size)
        if need > self.pool.num_blocks:
            raise RequestError(f"The request needs {need} KV blocks but the engine has only "
                               f"{self.pool.num_blocks}; shorten the prompt or max_tokens.")

    def _lora_id(self, lora: str | None) -> int | None:
        if lora is None:
            return None
        return self._lora_ids.setdefault(lora, len(self._lora_ids) + 1)

    def abort(self, progress: Progress) -> None:
        sreq = progress.handle
        entry = self._progress.pop(id(sreq), None)
        if entry is None:
            return
        self.scheduler.abort(sreq)
        if entry[1].lora:
            self._lora_active -= 1
        progress.aborted = True
        self.stats.success["abort"] = self.stats.success.get("abort", 0) + 1
        self._gauges()

    # the step loop --------------------------------------------------------------------------
    async def _run(self) -> None:
        assert self._loop is not None
        t = self._now()
        while True:
            if not self.scheduler.has_work():
                self._wake.clear()
                await self._wake.wait()
                t = min(self._now(), self._earliest_arrival())
                continue
            t = max(t, self._now() - MAX_LAG_S * self._scale)
            plan = self.scheduler.schedule(t)
            if not plan.scheduled:
                t = await self._idle_until_ready(t)
                continue
            end = t + step_time(plan.shape, self.profile)
            self._gauges()
            await self._sleep_until(end)
            self._apply(plan, self.scheduler.complete(plan, end))
            t = end

    def _earliest_arrival(self) -> float:
        """An idle engine starts its next step when the first queued request arrived."""
        return min((r.arrival for r in self.scheduler.waiting), default=self._now())

    async def _idle_until_ready(self, t: float) -> float:
        """Nothing runnable at *t*: move to when something is (a later arrival, a finished
        KV transfer), waiting for it in real time unless it is already past."""
        nxt = self.scheduler.next_runnable(t)
        if nxt is not None and nxt <= self._now():
            return nxt
        self._wake.clear()
        timeout = None if nxt is None else self._wall(nxt) - self._wall(self._now())
        try:
            await asyncio.wait_for(self._wake.wait(), timeout)
        except TimeoutError:
            pass
        now = self._now()
        return max(t, now if nxt is None else min(now, nxt))

    async def _sleep_until(self, model_t: float) -> None:
        assert self._loop is not None
        delay = self._wall(model_t) - time.monotonic()
        if delay <= 0:
            await asyncio.sleep(0)  # behind schedule: still let handlers and other engines run
            return
        fut = self._loop.create_future()
        self._loop.call_later(delay, _set_done, fut)
        await fut

    def _apply(self, plan: StepPlan, result: StepResult) -> None:
        s = self.stats
        s.prefix_queries += result.prefix_queries
        s.prefix_hits += result.prefix_hits
        s.preemptions += len(plan.preempted)
        s.iteration_tokens.observe(plan.shape.new_tokens)
        wall_end = self._wall(result.end)
        for sreq in result.produced:
            self._produced(sreq, result.end, wall_end)
        for sreq in result.finished:
            self._finished(sreq)
        self._gauges()
        for callback in self.on_step:
            callback()

    def _produced(self, sreq: SchedRequest, end: float, wall_end: float) -> None:
        s = self.stats
        s.generation_tokens += 1
        entry = self._progress.get(id(sreq))
        if sreq.num_output == 1:
            s.prompt_tokens += sreq.num_prompt
            s.prompt_len.observe(sreq.num_prompt)
            s.ttft.observe(end - sreq.arrival)
        if entry is not None and entry[1].stream and not sreq.finished:
            entry[0].advance(sreq.num_output, wall_end)

    def _finished(self, sreq: SchedRequest) -> None:
        s = self.stats
        entry = self._progress.pop(id(sreq), None)
        first, end = sreq.first_token or sreq.arrival, sreq.last_token or sreq.arrival
        n = sreq.num_output
        if n > 1:
            s.itl.observe((end - first) / (n - 1), n - 1)
        scheduled = sreq.first_scheduled if sreq.first_scheduled is not None else sreq.arrival
        s.e2e.observe(end - sreq.arrival)
        s.queue.observe(scheduled - sreq.arrival)
        s.inference.observe(end - scheduled)
        s.prefill.observe(first - scheduled)
        s.decode.observe(end - first)
        s.gen_len.observe(n)
        if entry is None:
            return
        prog, req = entry
        if req.lora:
            self._lora_active -= 1
        s.success[req.finish_reason] = s.success.get(req.finish_reason, 0) + 1
        prog.num_cached_tokens = sreq.num_cached
        if req.remote_decode:
            prog.kv_transfer_params = self._transfer_params(sreq)
        prog.advance(n, self._wall(end), finished=True)

    def _transfer_params(self, sreq: SchedRequest) -> dict[str, Any]:
        """What a prefill instance returns for the decode instance (NixlConnector's keys)."""
        return {"do_remote_prefill": True, "do_remote_decode": False,
                "remote_block_ids": sreq.released_blocks,
                "remote_engine_id": f"sim-{self.index}", "remote_host": "127.0.0.1",
                "remote_port": 0, "tp_size": self.profile.tensor_parallel}

    def _gauges(self) -> None:
        s, sch = self.stats, self.scheduler
        s.num_running = len(sch.running)
        s.num_waiting = len(sch.waiting)
        s.kv_usage = self.pool.usage()
        if not self._lora_active and not s.running_loras:
            return
        loras: dict[str, int] = {}
        for r in sch.running:
            entry = self._progress.get(id(r))
            if entry is not None and entry[1].lora:
                loras[entry[1].lora] = loras.get(entry[1].lora, 0) + 1
        s.running_loras = loras


def _set_done(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)
