"""Table-driven tests of the scaling policy: signals in, replica count out, no clock but ours."""

from __future__ import annotations

import pytest

from kubellm.autoscale import AutoscaleError, ScalerState, ScalingPolicy, Signals, decide
from kubellm.autoscale.decide import recommend
from kubellm.spec import load_spec_text

QUEUE = ScalingPolicy(min_replicas=1, max_replicas=4, signal="queueDepth", target=2,
                      scale_up_seconds=0, scale_down_seconds=0)
KV = ScalingPolicy(min_replicas=1, max_replicas=8, signal="kvCacheUsage", target=0.5,
                   scale_up_seconds=0, scale_down_seconds=0)


@pytest.mark.parametrize(
    ("policy", "signals", "expected"),
    [
        # demand signals: ceil((total + held) / target)
        (QUEUE, Signals(replicas=1, ready=1, waiting=0), 0),
        (QUEUE, Signals(replicas=1, ready=1, waiting=1), 1),
        (QUEUE, Signals(replicas=1, ready=1, waiting=5), 3),
        (QUEUE, Signals(replicas=0, ready=0, waiting=None, held=3), 2),
        (QUEUE, Signals(replicas=1, ready=0, waiting=None), None),
        # average signals: HPA's ratio rule over ready replicas, with a 10% tolerance
        (KV, Signals(replicas=2, ready=2, kv_usage=1.0), 4),
        (KV, Signals(replicas=2, ready=2, kv_usage=0.52), 2),
        (KV, Signals(replicas=4, ready=4, kv_usage=0.1), 1),
        (KV, Signals(replicas=2, ready=2, kv_usage=None), None),
        (KV, Signals(replicas=0, ready=0, kv_usage=None, held=1), 1),
    ],
)
def test_recommend(policy: ScalingPolicy, signals: Signals, expected: int | None) -> None:
    assert recommend(signals, policy, signals.replicas) == expected


@pytest.mark.parametrize(
    ("policy", "signals", "expected"),
    [
        (QUEUE, Signals(replicas=1, ready=1, waiting=100), 4),  # capped at max
        (QUEUE, Signals(replicas=3, ready=3, waiting=0), 1),  # floor is minReplicas
        (QUEUE, Signals(replicas=2, ready=2, waiting=4), 2),
        (QUEUE.model_copy(update={"min_replicas": 2}), Signals(replicas=2, ready=2), 2),
        (KV, Signals(replicas=2, ready=2, kv_usage=0.9), 4),
        (QUEUE, Signals(replicas=2, ready=1, waiting=None), 2),  # nothing observed: hold
    ],
)
def test_decide_without_windows(policy: ScalingPolicy, signals: Signals, expected: int) -> None:
    assert decide(signals, policy, ScalerState(), now=100.0).replicas == expected


def _run(policy: ScalingPolicy, ticks: list[tuple[float, Signals]]) -> list[int]:
    """Feed ticks through decide, returning each tick's replicas (the state carried over)."""
    state, out = ScalerState(), []
    for now, signals in ticks:
        decision = decide(signals, policy, state, now)
        state = decision.state
        out.append(decision.replicas)
    return out


def test_scale_down_waits_for_the_window() -> None:
    policy = QUEUE.model_copy(update={"scale_down_seconds": 30})
    busy, calm = Signals(replicas=4, ready=4, waiting=8), Signals(replicas=4, ready=4, waiting=0)
    assert _run(policy, [(0, busy), (10, calm), (29, calm), (41, calm)]) == [4, 4, 4, 1]


def test_scale_up_waits_for_the_window_and_takes_the_lowest() -> None:
    policy = QUEUE.model_copy(update={"scale_up_seconds": 20})
    one = Signals(replicas=1, ready=1, waiting=0)
    burst, big = Signals(replicas=1, ready=1, waiting=4), Signals(replicas=1, ready=1, waiting=8)
    # a one-tick burst does not scale; sustained load scales to what the whole window agrees on
    assert _run(policy, [(0, one), (5, burst), (10, big), (24, big), (31, big)]) == [1, 1, 1, 2, 4]


def test_scale_to_zero_after_idleness_and_back_on_a_held_request() -> None:
    policy = QUEUE.model_copy(update={"scale_to_zero": True, "idle_seconds": 60, "scale_down_seconds": 300})
    idle, busy = Signals(replicas=1, ready=1, waiting=0), Signals(replicas=1, ready=1, waiting=0, in_flight=1)
    held = Signals(replicas=0, ready=0, waiting=None, held=1)
    got = _run(policy, [(0, busy), (30, idle), (59, idle), (61, idle), (100, held), (101, busy)])
    # idleness counts from the last activity (t=0), not the down window; a held request activates
    assert got == [1, 1, 1, 0, 1, 1]


def test_never_used_service_goes_to_zero_after_idle_seconds_from_start() -> None:
    policy = QUEUE.model_copy(update={"scale_to_zero": True, "idle_seconds": 10})
    idle = Signals(replicas=1, ready=1, waiting=0)
    assert _run(policy, [(0, idle), (9, idle), (10, idle)]) == [1, 1, 0]


def test_activity_keeps_replicas_even_when_signal_is_zero() -> None:
    policy = QUEUE.model_copy(update={"scale_to_zero": True, "idle_seconds": 5})
    running = Signals(replicas=1, ready=1, waiting=0, running=3)
    assert _run(policy, [(0, running), (10, running), (20, running)]) == [1, 1, 1]


def test_decision_reason_names_the_signal_and_the_change() -> None:
    decision = decide(Signals(replicas=1, ready=1, waiting=6), QUEUE, ScalerState(), now=0)
    assert decision.reason == "scale up 1->3: queueDepth=6 target=2 asks 3"


def test_max_below_min_is_an_error_naming_both() -> None:
    with pytest.raises(AutoscaleError, match=r"maxReplicas \(1\) is below minReplicas \(3\)"):
        ScalingPolicy(min_replicas=3, max_replicas=1)


def test_policy_from_spec_reads_every_field() -> None:
    service = load_spec_text(
        """
apiVersion: kubellm.dev/v1alpha1
kind: LLMService
metadata: {name: s}
spec:
  model: {uri: sim://m}
  engine: {kind: sim}
  scaling:
    minReplicas: 2
    maxReplicas: 5
    signal: runningRequests
    target: 3
    scaleToZero: true
    idleSeconds: 42
    stabilization: {scaleUpSeconds: 7, scaleDownSeconds: 9}
"""
    )
    policy = ScalingPolicy.from_spec(service.spec.scaling)
    assert (policy.min_replicas, policy.max_replicas, policy.signal, policy.target) == (2, 5, "runningRequests", 3)
    assert (policy.scale_to_zero, policy.idle_seconds) == (True, 42)
    assert (policy.scale_up_seconds, policy.scale_down_seconds) == (7, 9)


def test_default_target_comes_from_the_signal() -> None:
    service = load_spec_text(
        "apiVersion: kubellm.dev/v1alpha1\nkind: LLMService\nmetadata: {name: s}\n"
        "spec: {model: {uri: 'sim://m'}, engine: {kind: sim}, scaling: {signal: kvCacheUsage, maxReplicas: 2}}"
    )
    assert ScalingPolicy.from_spec(service.spec.scaling).target == 0.8
