"""The plan: run the field's policies and a grid of kubellm's settings, pick the cheapest
setting that meets the SLO for at least ``goal`` of requests (pure over the simulation)."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kubellm.plan import params as PR
from kubellm.plan.fleet import FleetRun, simulate
from kubellm.plan.policies import KubellmParams
from kubellm.plan.provision import Provisioning
from kubellm.plan.report import Prices, Summary, summarize
from kubellm.plan.tracefile import TraceRequest
from kubellm.sim.profiles import Profile
from kubellm.spec.slo import Slo

PEERS = ("hpa-gpu", "keda-queue", "kubeai", "kpa")
RATES = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0)  # arrivals/s per replica: a coarse pass, then refined


@dataclass(frozen=True)
class Setup:
    trace: Sequence[TraceRequest]
    profile: Profile
    slo: Slo
    provisioning: Provisioning
    min_replicas: int
    max_replicas: int
    prices: Prices = Prices()
    goal: float = 0.99


@dataclass(frozen=True)
class Candidate:
    params: KubellmParams
    summary: Summary
    run: FleetRun


@dataclass(frozen=True)
class Plan:
    peers: list[Summary]
    candidates: list[Candidate]
    best: Candidate
    meets: bool
    """Whether *best* meets the goal; when not, it is the closest found."""
    without_zero: Candidate | None
    """The cheapest that meets the goal without scale to zero (what scale to zero saves)."""


def run_policy(setup: Setup, policy: str, params: Any, label: str | None = None) -> tuple[Summary, FleetRun]:
    run = simulate(setup.trace, setup.profile, PR.make(policy, params), setup.provisioning,
                   initial_replicas=max(1, getattr(params, "min_replicas", setup.min_replicas)))
    return summarize(label or policy, run, setup.slo, setup.prices), run


def _bounds(setup: Setup) -> dict[str, int]:
    return {"minReplicas": setup.min_replicas, "maxReplicas": setup.max_replicas}


def run_peers(setup: Setup, overrides: Mapping[str, Mapping[str, Any]]) -> list[Summary]:
    out = []
    for name in PEERS:
        given = dict(overrides.get(name, {}))
        floor = {"minReplicas": 0} if name == "kubeai" and "minReplicas" not in given else {}
        p = PR.build(name, {**_bounds(setup), **floor, **given})
        out.append(run_policy(setup, name, p)[0])
    return out


def kubellm_params(setup: Setup, overrides: Mapping[str, Any], rate: float, zero: bool) -> KubellmParams:
    """kubellm's settings at *rate* arrivals/s per replica, knowing the cold start."""
    cold = setup.provisioning.cold_start(setup.profile.weight_bytes, new_node=True)
    # keeping an idle replica for a cold start's length costs what starting it again would:
    # a shorter scale-down window trades GPU-hours for flapping, a longer one wastes them
    base = {**_bounds(setup), "targetRate": rate, "coldStartSeconds": cold, "scaleToZero": zero,
            "scaleDownWindowSeconds": max(60.0, cold)}
    p = PR.build("kubellm", {**base, **overrides})
    assert isinstance(p, KubellmParams)
    return p


def choose(cands: Sequence[Candidate], goal: float) -> tuple[Candidate, bool]:
    """Cheapest meeting *goal*; else the highest attainment (ties: cheaper)."""
    meeting = [c for c in cands if c.summary.attainment >= goal]
    if meeting:
        return min(meeting, key=lambda c: c.summary.gpu_hours), True
    return max(cands, key=lambda c: (c.summary.attainment, -c.summary.gpu_hours)), False


def peak_rate(trace: Sequence[TraceRequest]) -> float:
    """The busiest minute's arrivals per second."""
    counts: dict[int, int] = {}
    for r in trace:
        counts[int(r.at // 60)] = counts.get(int(r.at // 60), 0) + 1
    return max(counts.values(), default=0) / 60.0


def standing(setup: Setup, trial: Callable[..., Candidate], plain: Candidate) -> list[Candidate]:
    """Standing capacity instead of reaction: a floor that serves the busiest minute at a
    per-replica rate 2, 4 and 8 times the best reactive one. Where load can rise faster
    than a cold start (a flash crowd), only capacity already running serves it, and a floor
    sized for the peak at a higher rate per replica costs less than reacting early with a
    low one."""
    out = []
    for factor in (2.0, 4.0, 8.0):
        rate = plain.params.target_rate * factor
        floor = min(setup.max_replicas, max(1, math.ceil(peak_rate(setup.trace) / rate)))
        out.append(trial(rate, False, floor))
    return out


def make_plan(setup: Setup, overrides: Mapping[str, Mapping[str, Any]] | None = None, peers: bool = True) -> Plan:
    """Coarse pass over ``RATES``, one refining step between the best and its faster
    neighbour, standing floors (:func:`standing`), then the best with scale to zero after
    two decision intervals, one or ten idle minutes: about fifteen simulations in all."""
    overrides = overrides or {}
    own = overrides.get("kubellm", {})
    cands: list[Candidate] = []

    def trial(rate: float, zero: bool, floor: int | None = None, idle: float | None = None) -> Candidate:
        extra = {**({"minReplicas": floor} if floor else {}), **({"idleSeconds": idle} if idle else {})}
        p = kubellm_params(setup, {**own, **extra}, rate, zero)
        label = (f"kubellm rate={rate:g}/s{f' min={floor}' if floor else ''}"
                 f"{f' zero idle={idle:g}s' if zero else ''}")
        summary, run = run_policy(setup, "kubellm", p, label)
        cands.append(Candidate(p, summary, run))
        return cands[-1]

    for rate in RATES:
        trial(rate, False)
    plain, plain_meets = choose(cands, setup.goal)
    if plain_meets:
        plain, plain_meets = choose([plain, trial(plain.params.target_rate * 1.5, False)], setup.goal)
    plain, plain_meets = choose([plain, *standing(setup, trial, plain)], setup.goal)
    # how long to stay up after the last request: two decision intervals (sparse use: every
    # request pays a cold start and the node's keep anyway, and a request every few minutes
    # never leaves the replica idle that long), a minute, or ten (use that pauses and comes back)
    quick = 2 * plain.params.interval_seconds
    zeros = [trial(plain.params.target_rate, True, idle=idle) for idle in (quick, 60.0, 600.0)]
    best, meets = choose([plain, *zeros], setup.goal)
    return Plan(run_peers(setup, overrides) if peers else [], cands, best, meets, plain if plain_meets else None)


def scaling_block(c: Candidate) -> dict[str, Any]:
    """The spec's ``scaling`` block for candidate *c*.

    The spec's signals have no arrival rate, so the rate target becomes a running-requests
    target by Little's law: requests in flight per replica = arrivals/s per replica x the
    mean time a request spends in the service, measured in the candidate's run.
    """
    p = c.params
    return {"minReplicas": max(1, p.min_replicas), "maxReplicas": p.max_replicas, "signal": "runningRequests",
            "target": max(1, round(p.target_rate * mean_latency(c.run))), "scaleToZero": p.scale_to_zero,
            "idleSeconds": int(p.idle_seconds), "pollingIntervalSeconds": int(p.interval_seconds),
            "stabilization": {"scaleUpSeconds": int(p.scale_up_window), "scaleDownSeconds": int(p.scale_down_window)}}


def mean_latency(run: FleetRun) -> float:
    """Mean seconds from arrival to last token over the finished requests."""
    spans = [d - r.at for r, d in zip(run.trace, run.results.done) if d == d]
    return sum(spans) / len(spans) if spans else 0.0
