"""Scheduler decisions one step at a time."""

from __future__ import annotations

from kubellm.sim.kvcache import BlockPool
from kubellm.sim.scheduler import Limits, Scheduler, SchedRequest

from .conftest import random_prompt


def _req(name: str, prompt: int, out: int, arrival: float = 0.0, seed: int = 0) -> SchedRequest:
    ids = random_prompt(prompt, seed or hash(name) % 1000)
    return SchedRequest(name, ids + [0] * out, prompt, out, arrival)


def test_request_is_not_scheduled_before_it_arrives() -> None:
    sched = Scheduler(Limits(8, 1024, 16), BlockPool(64, 16))
    sched.add(_req("late", 10, 2, arrival=5.0))
    assert sched.schedule(4.0).scheduled == []
    assert sched.next_runnable(4.0) == 5.0
    assert [r.req_id for r, _ in sched.schedule(5.0).scheduled] == ["late"]


def test_long_prompt_is_prefilled_in_budget_sized_chunks() -> None:
    sched = Scheduler(Limits(8, 256, 16), BlockPool(256, 16))
    sched.add(_req("long", 1000, 1))
    chunks = []
    while not chunks or chunks[-1] == 256:
        plan = sched.schedule(0.0)
        chunks.append(plan.scheduled[0][1])
        sched.complete(plan, 0.0)
    assert chunks == [256, 256, 256, 232]


def test_newest_running_request_is_preempted_first_and_requeued_at_the_front() -> None:
    sched = Scheduler(Limits(8, 4096, 16), BlockPool(5, 16))
    old, new = _req("old", 32, 100, seed=1), _req("new", 31, 100, seed=2)
    sched.add(old)
    sched.add(new)
    sched.add(_req("third", 8, 1, seed=3))
    plan = sched.schedule(0.0)  # both prompts fit in 4 of the 5 blocks; the third waits
    sched.complete(plan, 0.0)
    for _ in range(40):  # decode until the blocks run out
        plan = sched.schedule(0.0)
        sched.complete(plan, 0.0)
        if plan.preempted:
            break
    assert [r.req_id for r in plan.preempted] == ["new"]
    assert sched.waiting[0].req_id == "new" and new.num_computed == 0 and new.blocks == []
    assert old in sched.running
