"""The fleet in virtual time: routing, scale-up with cold starts, scale to zero with held requests."""

from __future__ import annotations

import math

from kubellm.plan import params as PR
from kubellm.plan.fleet import simulate
from kubellm.plan.provision import Provisioning
from kubellm.plan.report import summarize
from kubellm.plan.search import Setup, make_plan
from kubellm.plan.tracefile import TraceRequest
from kubellm.plan.workloads import Workload, generate
from kubellm.sim.profiles import get_profile
from kubellm.spec.slo import Slo

PROF = get_profile("llama-3.1-8b-h100")


def steps(rates: list[tuple[float, float]], seed: int = 1) -> list[TraceRequest]:
    """A trace whose rate is each (until, rate) in turn."""
    def rate(t: float) -> float:
        return next(r for until, r in rates if t < until)
    return generate(Workload("steps", rates[-1][0], max(r for _, r in rates), rate), seed=seed)


def test_load_beyond_one_replica_scales_up_after_the_cold_start_and_every_request_finishes() -> None:
    trace = steps([(600, 2.0), (1200, 20.0)])
    policy = PR.make("kubellm", PR.build("kubellm", {"maxReplicas": 10, "targetRate": 5, "coldStartSeconds": 100}))
    run = simulate(trace, PROF, policy, Provisioning())
    assert all(not math.isnan(d) for d in run.results.done)
    assert run.cold_starts >= 2 and run.node_cold_starts >= 1
    cold = Provisioning().cold_start(PROF.weight_bytes, True)
    first_up = next(s.t for s in run.samples if s.ready > 1)
    assert first_up >= 600 + cold - 60  # nothing serves before its cold start is over
    assert run.node_seconds > 1200  # more than one node-time was billed


def test_scale_to_zero_holds_requests_until_a_replica_is_ready() -> None:
    trace = [TraceRequest(10.0, 200, 20), TraceRequest(2000.0, 200, 20), TraceRequest(2001.0, 100, 10)]
    policy = PR.make("kubellm", PR.build("kubellm", {"maxReplicas": 2, "scaleToZero": True, "idleSeconds": 300}))
    run = simulate(trace, PROF, policy, Provisioning())
    assert min(s.replicas for s in run.samples) == 0
    assert len(run.hold_times) == 2 and min(run.hold_times) > 60
    s = summarize("kubellm", run, Slo(ttft_p99_ms=2000, tpot_ms=100))
    assert s.attainment == 1 / 3  # the two held requests miss the TTFT objective; the first does not
    assert s.unfinished == 0


def test_an_unmeetable_slo_gives_the_closest_setting() -> None:
    trace = steps([(120, 10.0)])
    setup = Setup(trace, PROF, Slo(ttft_p99_ms=5, tpot_ms=1), Provisioning(), 1, 2)
    plan = make_plan(setup, peers=False)
    assert not plan.meets
    assert plan.best.summary.attainment == max(c.summary.attainment for c in plan.candidates)
