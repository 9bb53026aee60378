"""The plan: run the field's policies and a grid of kubellm's settings, pick the cheapest
setting that meets the SLO for at least ``goal`` of requests (pure over the simulation)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
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
TARGETS = (8, 16, 24, 32, 48, 64, 96)


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
                   initial_replicas=max(1, setup.min_replicas))
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


def kubellm_grid(setup: Setup, overrides: Mapping[str, Any]) -> list[KubellmParams]:
    """kubellm's settings to try: per-replica targets, with and without scale to zero."""
    cold = setup.provisioning.cold_start(setup.profile.weight_bytes, new_node=True)
    grid = []
    for zero in (False, True):
        for target in TARGETS:
            base = {**_bounds(setup), "targetRunning": target, "coldStartSeconds": cold,
                    "scaleToZero": zero, "scaleDownWindowSeconds": max(120.0, cold / 2)}
            p = PR.build("kubellm", {**base, **overrides})
            assert isinstance(p, KubellmParams)
            grid.append(p)
    return grid


def choose(cands: Sequence[Candidate], goal: float) -> tuple[Candidate, bool]:
    """Cheapest meeting *goal*; else the highest attainment (ties: cheaper)."""
    meeting = [c for c in cands if c.summary.attainment >= goal]
    if meeting:
        return min(meeting, key=lambda c: c.summary.gpu_hours), True
    return max(cands, key=lambda c: (c.summary.attainment, -c.summary.gpu_hours)), False


def make_plan(setup: Setup, overrides: Mapping[str, Mapping[str, Any]] | None = None, peers: bool = True) -> Plan:
    overrides = overrides or {}
    cands = []
    for p in kubellm_grid(setup, overrides.get("kubellm", {})):
        label = f"kubellm target={p.target:g}{' zero' if p.scale_to_zero else ''}"
        summary, run = run_policy(setup, "kubellm", p, label)
        cands.append(Candidate(p, summary, run))
    best, meets = choose(cands, setup.goal)
    steady = [c for c in cands if not c.params.scale_to_zero]
    plain, plain_meets = choose(steady, setup.goal)
    return Plan(run_peers(setup, overrides) if peers else [], cands, best, meets, plain if plain_meets else None)


def scaling_block(p: KubellmParams, setup: Setup) -> dict[str, Any]:
    """The spec's ``scaling`` block for kubellm's settings *p*."""
    return {"minReplicas": max(1, p.min_replicas), "maxReplicas": p.max_replicas, "signal": "runningRequests",
            "target": p.target, "scaleToZero": p.scale_to_zero, "idleSeconds": int(p.idle_seconds),
            "stabilization": {"scaleUpSeconds": 0, "scaleDownSeconds": int(p.scale_down_window)}}
