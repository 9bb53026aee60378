"""The status judgement: conditions, reasons, phase, ready replicas per role."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from kubellm.operator.health import Observation, Problem, cache_state, judge, role_state

NOW = dt.datetime(2026, 11, 23, 3, 0, tzinfo=dt.timezone.utc)


def job(*conditions: tuple[str, str], succeeded: int = 0) -> dict[str, Any]:
    return {"status": {"succeeded": succeeded, "conditions": [{"type": t, "status": s} for t, s in conditions]}}


def deployment(name: str, replicas: int, ready: int, updated: int | None = None, generation: int = 1, observed: int = 1, role: str | None = None) -> dict[str, Any]:
    labels = {"app.kubernetes.io/component": role} if role else {}
    return {
        "kind": "Deployment",
        "metadata": {"name": name, "generation": generation, "labels": labels},
        "spec": {"replicas": replicas},
        "status": {"readyReplicas": ready, "updatedReplicas": ready if updated is None else updated, "observedGeneration": observed},
    }


@pytest.mark.parametrize(
    ("jobs", "expected"),
    [
        ((), "ready"),
        ((job(("Complete", "True"), succeeded=1),), "ready"),
        ((job(succeeded=1),), "ready"),
        ((job(),), "loading"),
        ((job(("Failed", "True")),), "failed"),
        ((job(("Complete", "True")), job()), "loading"),
        ((job(("Complete", "True")), job(("Failed", "True"))), "failed"),
    ],
)
def test_cache_state(jobs: tuple[dict[str, Any], ...], expected: str) -> None:
    assert cache_state(jobs) == expected


def conditions(status: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {c["type"]: (c["status"], c["reason"]) for c in status["conditions"]}


def test_all_ready_is_available_and_settled() -> None:
    obs = Observation(generation=3, workloads=(deployment("m", 2, 2, role="engine"),), expected_workloads=1, service_url="http://m.ns.svc:80")
    status = judge(obs, [], NOW)
    assert conditions(status) == {
        "CacheReady": ("True", "CacheFilled"),
        "Available": ("True", "ReplicasReady"),
        "Progressing": ("False", "RolloutComplete"),
        "Degraded": ("False", "AsExpected"),
    }
    assert status["phase"] == "Available" and status["observedGeneration"] == 3
    assert status["roles"] == {"engine": {"ready": 2, "desired": 2, "updated": 2}}
    assert status["readyReplicas"] == 2 and status["serviceUrl"] == "http://m.ns.svc:80"


def test_loading_cache_waits_without_engines() -> None:
    status = judge(Observation(1, loader_jobs=(job(),), expected_workloads=1), [], NOW)
    assert conditions(status)["Available"] == ("False", "WaitingForCache")
    assert conditions(status)["Progressing"] == ("True", "LoadingModel")
    assert status["phase"] == "Progressing"


def test_failed_loader_is_degraded_while_old_engines_keep_serving() -> None:
    obs = Observation(2, loader_jobs=(job(("Failed", "True")),), workloads=(deployment("m", 1, 1),), expected_workloads=1)
    status = judge(obs, [], NOW)
    assert conditions(status)["Degraded"] == ("True", "LoaderFailed")
    assert conditions(status)["Available"] == ("True", "ReplicasReady")
    assert status["phase"] == "Degraded"


def test_rollout_in_progress_names_the_role() -> None:
    obs = Observation(2, workloads=(deployment("m", 2, 2, updated=1, generation=2, observed=2, role="decode"),), expected_workloads=1)
    status = judge(obs, [], NOW)
    assert conditions(status)["Progressing"][0] == "True"
    assert "decode" in next(c["message"] for c in status["conditions"] if c["type"] == "Progressing")


def test_unobserved_generation_is_still_progressing() -> None:
    obs = Observation(2, workloads=(deployment("m", 1, 1, generation=2, observed=1),), expected_workloads=1)
    assert conditions(judge(obs, [], NOW))["Progressing"][0] == "True"


def test_not_ready_replicas_are_counted_in_the_message() -> None:
    obs = Observation(1, workloads=(deployment("p", 2, 1, role="prefill"), deployment("d", 1, 1, role="decode")), expected_workloads=2)
    status = judge(obs, [], NOW)
    available = next(c for c in status["conditions"] if c["type"] == "Available")
    assert available["status"] == "False" and available["message"] == "ready replicas: prefill 1/2"


def test_problems_make_it_degraded_with_the_first_reason() -> None:
    obs = Observation(1, problems=(Problem("InvalidSpec", "spec.x: bad"), Problem("ApplyFailed", "Service y: 422")))
    degraded = next(c for c in judge(obs, [], NOW)["conditions"] if c["type"] == "Degraded")
    assert degraded["reason"] == "InvalidSpec" and degraded["message"] == "spec.x: bad; Service y: 422"


def test_transition_time_is_kept_while_the_status_does_not_flip() -> None:
    obs = Observation(1, workloads=(deployment("m", 1, 1),), expected_workloads=1)
    earlier = [{"type": "Available", "status": "True", "lastTransitionTime": "2026-01-01T00:00:00Z"},
               {"type": "Degraded", "status": "True", "lastTransitionTime": "2026-01-01T00:00:00Z"}]
    times = {c["type"]: c["lastTransitionTime"] for c in judge(obs, earlier, NOW)["conditions"]}
    assert times["Available"] == "2026-01-01T00:00:00Z"
    assert times["Degraded"] == "2026-11-23T03:00:00Z"


def test_role_defaults_to_the_workload_name() -> None:
    assert role_state(deployment("llama", 1, 0)).name == "llama"


def test_refused_pods_and_stalled_rollouts_are_degraded() -> None:
    refused = deployment("m", 1, 0)
    refused["status"]["conditions"] = [{"type": "ReplicaFailure", "status": "True", "message": "no PriorityClass with name x"}]
    stalled = deployment("n", 1, 0)
    stalled["status"]["conditions"] = [{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded", "message": "slow"}]
    status = judge(Observation(1, workloads=(refused, stalled), expected_workloads=2), [], NOW)
    degraded = next(c for c in status["conditions"] if c["type"] == "Degraded")
    assert degraded["reason"] == "ReplicaFailure"
    assert degraded["message"] == "Deployment m: no PriorityClass with name x; Deployment n: slow"
    assert status["phase"] == "Degraded"


def test_a_new_degraded_reason_is_one_warning_and_a_lasting_one_no_more() -> None:
    from kubellm.operator.reconcile import new_degradation

    failed = Observation(2, loader_jobs=(job(("Failed", "True")),), workloads=(deployment("m", 1, 1),), expected_workloads=1)
    healthy = judge(Observation(1, workloads=(deployment("m", 1, 1),), expected_workloads=1), [], NOW)
    first = judge(failed, healthy["conditions"], NOW)
    reason, message = new_degradation(healthy, first) or ("", "")
    assert reason == "LoaderFailed" and message
    again = judge(failed, first["conditions"], NOW)
    assert new_degradation(first, again) is None  # the same problem on the next pass: no new event
    apply_failed = judge(Observation(2, problems=(Problem("ApplyFailed", "Service y: 422"),), expected_workloads=1),
                         again["conditions"], NOW)
    assert new_degradation(again, apply_failed) == ("ApplyFailed", conditions(apply_failed)["Degraded"] and
                                                    next(c["message"] for c in apply_failed["conditions"]
                                                         if c["type"] == "Degraded"))
    assert new_degradation(healthy, healthy) is None


def test_an_old_ready_pod_does_not_make_an_unready_new_one_settled() -> None:
    """Surge rollout: the new pod exists (updated 1) but only the old one is ready (ready 1)."""
    surging = deployment("chat", 1, 1, updated=1)
    surging["status"]["replicas"] = 2
    assert not role_state(surging).settled and role_state(surging).stale == 1
    surging["status"]["replicas"] = 1
    assert role_state(surging).settled


def test_a_new_template_with_no_updated_pod_yet_is_not_settled() -> None:
    """The controller has seen the new template (observedGeneration current) but made no pod of
    it yet: the API omits the zero `updatedReplicas`. The old ready pod must not count as
    updated (it did, and a canary promotion once retired the canary on that)."""
    just_seen = {
        "kind": "Deployment",
        "metadata": {"name": "chat", "generation": 2, "labels": {}},
        "spec": {"replicas": 1},
        "status": {"observedGeneration": 2, "replicas": 1, "readyReplicas": 1, "availableReplicas": 1},
    }
    state = role_state(just_seen)
    assert state.updated == 0 and state.stale == 1 and not state.settled
