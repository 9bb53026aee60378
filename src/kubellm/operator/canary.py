"""How much traffic a gateway canary gets, stepped by the operator (rollout.strategy
gatewayCanary). Pure: the spec, the last state and the roles' readiness in, the next state out.

The state lives in ``status.canary`` so that a restarted operator carries on where it was:

  Waiting    the canary's cache is filling or its engines are not all ready: weight 0
  Serving    weight = steps[step]; after pauseSeconds at a step, the next step
  Complete   the last step is reached: promote by making the canary's URI spec.model.uri
  Promoting  spec.model.uri is now the canary's and the canary is gone from the spec: the old
             canary pool keeps its weight until the main engines serve the new model, so
             traffic never falls back to the old version; then the canary is retired (pruned)

A canary that stops being ready loses its traffic at once (weight 0, a Warning event) and
gets its step's weight back when it is ready again.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kubellm.gateway.fromspec import CanaryRoute
from kubellm.operator.health import RoleState
from kubellm.spec import LLMService
from kubellm.spec.rollout import Canary

CANARY_ROLE = "canary"
MAIN_ROLE = "engine"


@dataclass(frozen=True)
class CanaryEvent:
    type: str
    reason: str
    message: str


@dataclass(frozen=True)
class CanaryDecision:
    state: dict[str, Any] | None
    """The next ``status.canary`` (None: the service has no canary)."""
    event: CanaryEvent | None = None
    retired: bool = False
    """A promotion just finished: the old canary's objects may be pruned now."""

    @property
    def route(self) -> CanaryRoute | None:
        """What the gateway should do with the canary pool now."""
        if self.state is None:
            return None
        return CanaryRoute(int(self.state["weight"]), str(self.state["servedName"]))

    @property
    def retiring(self) -> bool:
        """The old canary pool still takes traffic for a promotion: keep its objects."""
        return self.state is not None and self.state["phase"] == "Promoting"


def weight_steps(canary: Canary) -> tuple[int, ...]:
    """The weights the canary goes through: spec steps, else just spec weight."""
    return tuple(canary.steps) or (canary.weight,)


def route_from_status(status: Mapping[str, Any] | None) -> CanaryRoute | None:
    """The route a service's recorded ``status.canary`` stands for (another service's pass)."""
    state = (status or {}).get("canary")
    if not isinstance(state, dict) or "servedName" not in state:
        return None
    return CanaryRoute(int(state.get("weight", 0)), str(state["servedName"]))


def decide(service: LLMService, previous: Mapping[str, Any] | None, roles: Mapping[str, RoleState],
           applied: bool, now: dt.datetime) -> CanaryDecision:
    """The next canary state. *applied*: the desired workloads are in place (a role's
    readiness before that is the previous version's, which must not earn the new one traffic)."""
    spec = service.spec
    canary = spec.rollout.canary
    if spec.rollout.strategy != "gatewayCanary" or canary is None or not canary.uri:
        return _without_canary(service, previous, applied and _ready(roles.get(MAIN_ROLE)))
    steps = weight_steps(canary)
    served = canary.served_name or spec.model.served_name
    if not previous or previous.get("uri") != canary.uri or previous.get("phase") == "Promoting":
        previous = {"uri": canary.uri, "servedName": served, "step": 0, "weight": 0,
                    "since": _stamp(now), "phase": "Waiting"}
    step = min(int(previous.get("step", 0)), len(steps) - 1)
    weight, since = int(previous.get("weight", 0)), str(previous.get("since") or _stamp(now))
    state = {"uri": canary.uri, "servedName": served, "step": step, "steps": list(steps)}
    if not (applied and _ready(roles.get(CANARY_ROLE), serving=True)):
        state.update(weight=0, since=since if weight == 0 else _stamp(now), phase="Waiting")
        event = None
        if weight > 0:
            event = CanaryEvent("Warning", "CanaryNotReady", f"canary {canary.uri} is not ready: its traffic goes back "
                                f"to the main version ({weight}% -> 0%)")
        return CanaryDecision(state, event)
    if weight > 0 and step < len(steps) - 1 and _elapsed(since, now) >= canary.pause_seconds:
        step += 1
    target = steps[step]
    if target != weight:
        since = _stamp(now)
    phase = "Complete" if step == len(steps) - 1 else "Serving"
    state.update(step=step, weight=target, since=since, phase=phase)
    event = None
    if target != weight:
        then = " (last step: promote by setting spec.model.uri to it)" if phase == "Complete" else ""
        event = CanaryEvent("Normal", "CanaryWeight", f"canary {canary.uri} gets {target}% of requests, "
                            f"step {step + 1}/{len(steps)} (was {weight}%){then}")
    return CanaryDecision(state, event)


def _ready(role: RoleState | None, serving: bool = False) -> bool:
    """Rolled out and all replicas ready (*serving*: and at least one replica)."""
    return role is not None and role.settled and (role.desired >= 1 or not serving)


def _without_canary(service: LLMService, previous: Mapping[str, Any] | None, main_ready: bool) -> CanaryDecision:
    """No canary in the spec: a promotion hands over, anything else just ends the canary."""
    if not previous:
        return CanaryDecision(None)
    promoted = previous.get("uri") == service.spec.model.uri and int(previous.get("weight", 0)) > 0
    if promoted and not main_ready:
        event = None
        if previous.get("phase") != "Promoting":
            event = CanaryEvent("Normal", "CanaryPromoting", f"the main engines move to {previous['uri']}; the canary "
                                f"keeps {previous['weight']}% of requests until they are ready")
        return CanaryDecision({**previous, "phase": "Promoting"}, event)
    if promoted or previous.get("phase") == "Promoting":
        return CanaryDecision(None, CanaryEvent("Normal", "CanaryRetired", f"the main engines serve {previous['uri']}: "
                                                "the canary is retired"), retired=True)
    return CanaryDecision(None)


def _stamp(now: dt.datetime) -> str:
    # Milliseconds, not the seconds of condition times: a pause must not end up to 1 s early.
    return now.astimezone(dt.timezone.utc).isoformat(timespec="milliseconds")


def _elapsed(since: str, now: dt.datetime) -> float:
    try:
        start = dt.datetime.fromisoformat(since)
    except ValueError:  # a hand-edited status: start the pause again rather than fail
        return 0.0
    if start.tzinfo is None:
        start = start.replace(tzinfo=dt.timezone.utc)
    return (now - start).total_seconds()
