"""From what the cluster shows to the LLMService's status: conditions with reasons, ready
replicas per role, phase. Pure: the reconciler gathers the live objects, this judges them.

Conditions (type: meaning when True):
  CacheReady   the model's weights are in the cache (or no cache is needed)
  Available    every engine workload has all its replicas ready
  Progressing  a change is being rolled out (loading a model, replacing pods)
  Degraded     something needs a person: bad spec, failed loader, missing API, refused apply
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from kubellm.operator.kinds import REPLICA_KINDS

ROLE_LABEL = "app.kubernetes.io/component"


@dataclass(frozen=True)
class Problem:
    """Why the service is Degraded: a CamelCase reason and a message for people."""

    reason: str
    message: str


@dataclass(frozen=True)
class RoleState:
    name: str
    desired: int
    ready: int
    updated: int
    current: bool
    """The workload controller has seen the latest spec (observedGeneration)."""
    stale: int = 0
    """Pods of an older template still running (ready old pods can hide unready new ones)."""

    @property
    def settled(self) -> bool:
        return self.current and self.ready >= self.desired and self.updated >= self.desired and self.stale == 0


@dataclass(frozen=True)
class Observation:
    generation: int
    loader_jobs: tuple[dict[str, Any], ...] = ()
    """Live loader Jobs of the desired cache (empty when the cache needs none)."""
    workloads: tuple[dict[str, Any], ...] = ()
    """Live engine workloads (only those that exist)."""
    expected_workloads: int = 0
    problems: tuple[Problem, ...] = ()
    service_url: str | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)
    """Things skipped on purpose (e.g. a monitor whose CRD is absent)."""


def _job_state(job: dict[str, Any]) -> str:
    status = job.get("status") or {}
    for condition in status.get("conditions") or []:
        if condition.get("status") == "True" and condition.get("type") in ("Complete", "SuccessCriteriaMet"):
            return "done"
        if condition.get("status") == "True" and condition.get("type") == "Failed":
            return "failed"
    return "done" if status.get("succeeded", 0) >= 1 else "loading"


def cache_state(jobs: tuple[dict[str, Any], ...]) -> str:
    """ready, loading or failed (no loader Job at all: ready)."""
    states = {_job_state(job) for job in jobs}
    if "failed" in states:
        return "failed"
    return "loading" if "loading" in states else "ready"


def role_state(obj: dict[str, Any]) -> RoleState:
    meta, spec, status = obj["metadata"], obj.get("spec") or {}, obj.get("status") or {}
    desired = int(spec.get("replicas", 1))
    role = (meta.get("labels") or {}).get(ROLE_LABEL) or meta["name"]
    current = int(status.get("observedGeneration", 0)) >= int(meta.get("generation", 1))
    ready = int(status.get("readyReplicas", 0) or 0)
    # every managed kind reports updatedReplicas, and the API omits it when it is 0 (just
    # after a template change): absent means no pod of the new template yet
    updated = int(status.get("updatedReplicas", 0) or 0)
    stale = max(0, int(status.get("replicas", 0) or 0) - updated)
    return RoleState(role, desired, ready, updated, current, stale)


def _condition(kind: str, ok: bool, reason: str, message: str) -> dict[str, Any]:
    return {"type": kind, "status": "True" if ok else "False", "reason": reason, "message": message}


def _cache_condition(state: str) -> dict[str, Any]:
    return {
        "ready": _condition("CacheReady", True, "CacheFilled", "the model cache is ready"),
        "loading": _condition("CacheReady", False, "Loading", "the loader Job is filling the cache"),
        "failed": _condition("CacheReady", False, "LoaderFailed", "the loader Job failed; engines keep their old version"),
    }[state]


def _available(obs: Observation, roles: list[RoleState], cache: str) -> dict[str, Any]:
    if cache != "ready" and not roles:
        return _condition("Available", False, "WaitingForCache", "engines start once the cache is ready")
    if len(roles) < obs.expected_workloads:
        return _condition("Available", False, "WorkloadsMissing", "not every engine workload exists yet")
    waiting = [r for r in roles if r.ready < r.desired]
    if waiting:
        text = ", ".join(f"{r.name} {r.ready}/{r.desired}" for r in waiting)
        return _condition("Available", False, "ReplicasNotReady", f"ready replicas: {text}")
    return _condition("Available", True, "ReplicasReady", "every engine replica is ready")


def _progressing(roles: list[RoleState], cache: str, expected: int) -> dict[str, Any]:
    if cache == "loading":
        return _condition("Progressing", True, "LoadingModel", "waiting for the loader Job")
    moving = [r.name for r in roles if not r.settled]
    if moving or len(roles) < expected:
        return _condition("Progressing", True, "RollingOut", f"rolling out: {', '.join(moving) or 'creating workloads'}")
    return _condition("Progressing", False, "RolloutComplete", "the latest spec is rolled out")


def workload_problems(workloads: tuple[dict[str, Any], ...]) -> list[Problem]:
    """What the workload controllers report as stuck: pods refused (quota, admission, a
    missing PriorityClass) or a rollout past its progress deadline."""
    problems = []
    for obj in workloads:
        for c in (obj.get("status") or {}).get("conditions") or []:
            name = obj["metadata"]["name"]
            if c.get("type") == "ReplicaFailure" and c.get("status") == "True":
                problems.append(Problem("ReplicaFailure", f"{obj.get('kind', 'workload')} {name}: {c.get('message', '')}"))
            elif c.get("type") == "Progressing" and c.get("reason") == "ProgressDeadlineExceeded":
                problems.append(Problem("ProgressDeadlineExceeded", f"{obj.get('kind', 'workload')} {name}: {c.get('message', '')}"))
    return problems


def _degraded(obs: Observation, cache: str) -> dict[str, Any]:
    problems = list(obs.problems) + workload_problems(obs.workloads)
    if cache == "failed":
        problems.append(Problem("LoaderFailed", "the loader Job failed: check its logs (kubectl logs job/<name>)"))
    if problems:
        return _condition("Degraded", True, problems[0].reason, "; ".join(p.message for p in problems))
    return _condition("Degraded", False, "AsExpected", "; ".join(obs.notes) or "no problems")


def _phase(conditions: dict[str, dict[str, Any]]) -> str:
    if conditions["Degraded"]["status"] == "True":
        return "Degraded"
    if conditions["Available"]["status"] == "True":
        return "Available"
    return "Progressing"


def _with_times(new: dict[str, Any], old: dict[str, Any] | None, now: dt.datetime) -> dict[str, Any]:
    """Keep lastTransitionTime when the status did not flip (the Kubernetes convention)."""
    keep = old is not None and old.get("status") == new["status"] and old.get("lastTransitionTime")
    stamp = old["lastTransitionTime"] if keep and old else now.strftime("%Y-%m-%dT%H:%M:%SZ")
    return {**new, "lastTransitionTime": stamp}


def judge(obs: Observation, previous: list[dict[str, Any]], now: dt.datetime) -> dict[str, Any]:
    """The status block for *obs*; *previous* conditions keep their transition times."""
    cache = cache_state(obs.loader_jobs)
    roles = [role_state(w) for w in obs.workloads if w.get("kind") in REPLICA_KINDS]
    new = [
        _cache_condition(cache),
        _available(obs, roles, cache),
        _progressing(roles, cache, obs.expected_workloads),
        _degraded(obs, cache),
    ]
    old = {c.get("type"): c for c in previous}
    conditions = [_with_times(c, old.get(c["type"]), now) for c in new]
    status: dict[str, Any] = {
        "observedGeneration": obs.generation,
        "conditions": conditions,
        "phase": _phase({c["type"]: c for c in conditions}),
        "readyReplicas": sum(r.ready for r in roles),
        "roles": {r.name: {"ready": r.ready, "desired": r.desired, "updated": r.updated} for r in roles},
    }
    if obs.service_url:
        status["serviceUrl"] = obs.service_url
    return status
