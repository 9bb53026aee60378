"""The gateway canary's weight as the operator steps it: pure decisions over roles and time."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from kubellm.gateway.fromspec import CanaryRoute
from kubellm.operator.canary import CanaryDecision, decide, route_from_status
from kubellm.operator.health import RoleState
from kubellm.spec import LLMService, parse_spec

T0 = dt.datetime(2026, 12, 1, 12, 0, 0, tzinfo=dt.timezone.utc)
READY = {"engine": RoleState("engine", 2, 2, 2, True), "canary": RoleState("canary", 1, 1, 1, True)}
CANARY_STARTING = {**READY, "canary": RoleState("canary", 1, 0, 1, True)}


def service(model: str = "hf://org/a", canary: str | None = "hf://org/b", steps: tuple[int, ...] = (10, 50, 100),
            pause: int = 60) -> LLMService:
    rollout: dict[str, Any] = {"strategy": "gatewayCanary", "canary": {"uri": canary, "steps": list(steps), "pauseSeconds": pause}}
    if canary is None:
        rollout = {}
    return parse_spec({"apiVersion": "kubellm.dev/v1alpha1", "kind": "LLMService", "metadata": {"name": "chat"},
                       "spec": {"model": {"uri": model, "servedName": "chat"}, "rollout": rollout}})


def run(svc: LLMService, steps: Sequence[tuple[float, dict[str, RoleState], bool]]) -> list[CanaryDecision]:
    """Passes at T0 + seconds, each fed the previous pass's state."""
    state: dict[str, Any] | None = None
    out = []
    for seconds, roles, applied in steps:
        decision = decide(svc, state, roles, applied, T0 + dt.timedelta(seconds=seconds))
        state = decision.state
        out.append(decision)
    return out


def weights(decisions: list[CanaryDecision]) -> list[int | None]:
    return [d.route.weight if d.route else None for d in decisions]


def test_no_traffic_until_the_canary_is_rolled_out_and_ready() -> None:
    decisions = run(service(), [(0, READY, False), (10, CANARY_STARTING, True), (20, READY, True)])
    assert weights(decisions) == [0, 0, 10]
    assert [d.state["phase"] for d in decisions if d.state] == ["Waiting", "Waiting", "Serving"]
    assert decisions[2].event is not None and decisions[2].event.reason == "CanaryWeight"
    assert "10%" in decisions[2].event.message and "step 1/3" in decisions[2].event.message


def test_steps_advance_only_after_the_pause_at_each_step() -> None:
    passes = [(0, READY, True), (59, READY, True), (60, READY, True), (100, READY, True), (120, READY, True),
              (500, READY, True)]
    decisions = run(service(pause=60), passes)
    assert weights(decisions) == [10, 10, 50, 50, 100, 100]
    assert decisions[-1].state is not None and decisions[-1].state["phase"] == "Complete"
    assert decisions[4].event is not None and "promote" in decisions[4].event.message
    assert [d.event is None for d in decisions] == [False, True, False, True, False, True]


def test_an_unready_canary_loses_its_traffic_and_gets_its_step_back_when_ready() -> None:
    decisions = run(service(pause=60), [(0, READY, True), (60, READY, True), (70, CANARY_STARTING, True),
                                         (200, CANARY_STARTING, True), (210, READY, True), (260, READY, True),
                                         (270, READY, True)])
    assert weights(decisions) == [10, 50, 0, 0, 50, 50, 100]
    event = decisions[2].event
    assert event is not None and event.type == "Warning" and event.reason == "CanaryNotReady" and "50% -> 0%" in event.message
    # the pause restarts when traffic comes back: no jump to 100 at 210 s
    assert decisions[4].state is not None and decisions[4].state["step"] == 1


def test_a_new_canary_uri_starts_over_at_zero() -> None:
    first = run(service(pause=0), [(0, READY, True), (1, READY, True)])
    assert weights(first) == [10, 50]
    again = decide(service(canary="hf://org/c", pause=0), first[-1].state, READY, False, T0 + dt.timedelta(seconds=2))
    assert again.route == CanaryRoute(0, "chat") and again.state is not None and again.state["step"] == 0


def test_promotion_keeps_the_canary_weight_until_the_main_engines_serve_the_new_model() -> None:
    done = run(service(steps=(100,)), [(0, READY, True)])[-1]
    assert done.route == CanaryRoute(100, "chat")
    promoted = service(model="hf://org/b", canary=None)
    rolling = {"engine": RoleState("engine", 2, 2, 1, True)}
    handing = decide(promoted, done.state, READY, False, T0)  # new engines not applied yet
    assert handing.retiring and handing.route == CanaryRoute(100, "chat")
    assert handing.event is not None and handing.event.reason == "CanaryPromoting"
    still = decide(promoted, handing.state, rolling, True, T0)
    assert still.retiring and still.event is None
    retired = decide(promoted, still.state, READY, True, T0)
    assert retired.state is None and not retired.retiring and retired.route is None
    assert retired.event is not None and retired.event.reason == "CanaryRetired"


def test_dropping_the_canary_without_promoting_ends_it_at_once() -> None:
    done = run(service(), [(0, READY, True)])[-1]
    dropped = decide(service(canary=None), done.state, READY, False, T0)
    assert dropped.state is None and dropped.route is None and not dropped.retiring


def test_without_a_canary_there_is_no_state() -> None:
    assert decide(service(canary=None), None, READY, True, T0) == CanaryDecision(None)


def test_route_from_a_recorded_status() -> None:
    assert route_from_status({"canary": {"weight": 30, "servedName": "chat"}}) == CanaryRoute(30, "chat")
    assert route_from_status({"canary": None}) is None and route_from_status(None) is None
