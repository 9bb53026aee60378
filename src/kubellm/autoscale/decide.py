"""The policy itself: ``decide(signals, policy, state, now) -> Decision``.

Steps, each a small pure function:
1. raw recommendation from the signal (demand / target, or HPA's ratio rule);
2. bounds: [floor, max], or 0 when scale to zero applies and the service has been idle;
3. stabilization: a scale-up acts on the lowest recommendation of the up window, a
   scale-down on the highest of the down window (HPA's behavior), so a burst or a lull
   must last the window before replicas follow;
4. activation: with zero replicas and work waiting, go to at least one at once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from kubellm.autoscale.policy import DEMAND_SIGNALS, ScalingPolicy
from kubellm.autoscale.signals import Signals
from kubellm.autoscale.state import ScalerState


@dataclass(frozen=True, slots=True)
class Decision:
    replicas: int
    """Replicas to run now."""
    recommendation: int
    """What the signal alone asked for, before windows."""
    reason: str
    """One line a person can read in the live view or a log."""
    state: ScalerState
    """Pass this back on the next tick."""


def _observed(signals: Signals, signal: str) -> float | None:
    values = {
        "queueDepth": signals.waiting,
        "runningRequests": signals.running,
        "kvCacheUsage": signals.kv_usage,
        "ttft": signals.ttft_p90,
        "gpuUtilization": signals.gpu_util,
    }
    return values[signal]


def recommend(signals: Signals, policy: ScalingPolicy, current: int) -> int | None:
    """Replicas the signal asks for, unbounded; None when the signal was not observed."""
    value = _observed(signals, policy.signal)
    if policy.signal in DEMAND_SIGNALS:
        if value is None and signals.held == 0:
            return None
        return math.ceil(((value or 0.0) + signals.held) / policy.target)
    if value is None or signals.ready == 0:
        return None if signals.held == 0 else 1
    ratio = value / policy.target
    if abs(ratio - 1.0) <= policy.tolerance:
        return current
    return math.ceil(signals.ready * ratio)


def bound(recommendation: int, policy: ScalingPolicy, idle_for: float, active: bool) -> int:
    """Clamp into [floor, max]; zero only for scale to zero after the idle period."""
    if policy.scale_to_zero and not active and idle_for >= policy.idle_seconds:
        return 0
    return min(max(recommendation, policy.floor), policy.max_replicas)


def stabilize(bounded: int, current: int, policy: ScalingPolicy, state: ScalerState, now: float) -> int:
    """Hold a change until the window agrees; scale-to-zero is governed by idleness alone."""
    if bounded > current:
        return max(current, min(state.within(now, policy.scale_up_seconds)))
    if 0 < bounded < current:
        return min(current, max(state.within(now, policy.scale_down_seconds)))
    return bounded


def decide(signals: Signals, policy: ScalingPolicy, state: ScalerState, now: float) -> Decision:
    """The replicas to run given this tick's signals and the previous state."""
    current = signals.replicas
    raw = recommend(signals, policy, current)
    if raw is None:
        reason = f"{policy.signal} not observed; holding {current}"
        held = ScalerState(state.recommendations, state.last_active, state.started if state.started is not None else now)
        return Decision(current, current, reason, held)
    horizon = max(policy.scale_up_seconds, policy.scale_down_seconds)
    active = signals.active
    new_state = state.remember(now, _clamp(raw, policy), horizon, active)
    bounded = bound(raw, policy, new_state.idle_for(now), active)
    replicas = stabilize(bounded, current, policy, new_state, now)
    if current == 0 and (signals.held > 0 or signals.in_flight > 0):
        replicas = max(replicas, 1)  # activation: someone is waiting on us
    return Decision(replicas, raw, _reason(signals, policy, raw, replicas, current), new_state)


def _clamp(raw: int, policy: ScalingPolicy) -> int:
    # Windows compare bounded values, so an idle service's zeros do not drag a scale-down
    # below the floor and a burst's huge demand does not outlast the max.
    return min(max(raw, policy.floor), policy.max_replicas)


def _reason(signals: Signals, policy: ScalingPolicy, raw: int, replicas: int, current: int) -> str:
    value = _observed(signals, policy.signal)
    shown = "n/a" if value is None else f"{value:g}"
    verb = "scale up" if replicas > current else "scale down" if replicas < current else "hold"
    held = f", held {signals.held}" if signals.held else ""
    return f"{verb} {current}->{replicas}: {policy.signal}={shown} target={policy.target:g}{held} asks {raw}"
