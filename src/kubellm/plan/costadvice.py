"""What the plan recommends for `spec.cost` (pure): a budget alert sized from the planned
accelerator-hours, and, when the user names their spot provider, spot nodes with on-demand
fallback, a disruption floor and a serving PriorityClass. GPU sharing is not recommended:
the fleet model does not simulate engines sharing a GPU."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kubellm.plan.report import Prices, Summary
from kubellm.spec.cost import SPOT_PRESETS

SPOT_PROVIDERS: tuple[str, ...] = tuple(SPOT_PRESETS)
"""Providers --spot accepts: those with a label preset (custom needs a label the plan cannot guess)."""
BUDGET_HEADROOM = 1.25
"""The budget alert fires above the planned use plus a quarter: load a quarter above the
trace's is what the alert is for."""
DAY = 86_400.0


@dataclass(frozen=True)
class CostAdvice:
    block: dict[str, Any]
    """The `spec.cost` settings to write back (merged over the spec's own)."""
    lines: list[str]
    """What the plan prints about them."""


@dataclass(frozen=True)
class ServiceFacts:
    """What of the spec the advice depends on."""

    min_replicas: int
    disruption_budget: bool
    own_priority_class: bool


def daily_budget(gpu_hours: float, duration_s: float) -> float:
    """Accelerator-hours a day: the plan's, scaled from the trace's length to 24 h, plus headroom."""
    per_day = gpu_hours * DAY / max(duration_s, 1.0)
    return round(per_day * BUDGET_HEADROOM, 1)


def budget_advice(best: Summary, duration_s: float) -> tuple[dict[str, Any], str]:
    hours = daily_budget(best.gpu_hours, duration_s)
    line = (f"budget: spec.cost.budget alerts above {hours:g} accelerator-hours a day (the plan's "
            f"{best.gpu_hours:.1f} over {duration_s / 3600:.1f} h, scaled to 24 h, plus 25 %)")
    return {"acceleratorHours": hours, "window": "1d"}, line


def spot_advice(best: Summary, facts: ServiceFacts, provider: str | None, prices: Prices) -> tuple[dict[str, Any], list[str]]:
    cost = (f"spot: {best.cost_spot:.0f} USD instead of {best.cost_on_demand:.0f} on demand "
            f"({prices.spot:g} against {prices.on_demand:g} per accelerator-hour, assumed; reclaims are priced, not simulated)")
    if provider is None:
        return {}, [cost + f"; --spot {'|'.join(SPOT_PROVIDERS)} writes spec.cost.spot"]
    block: dict[str, Any] = {"spot": {"provider": provider}}
    lines = [cost]
    if facts.min_replicas >= 2 and facts.disruption_budget:
        block["spot"]["minAvailable"] = facts.min_replicas - 1
        lines.append(f"spot: a floor of {facts.min_replicas - 1} replica(s) through drains (spec.cost.spot.minAvailable)")
    else:
        lines.append("spot: with one replica a reclaim stops the service for a cold start; minReplicas 2 keeps one up")
    if not facts.own_priority_class:
        block["priorityClass"] = {}
        lines.append("spot: a serving PriorityClass, so on the on-demand fallback serving pre-empts batch work")
    return block, lines


def advise(best: Summary, duration_s: float, facts: ServiceFacts, provider: str | None,
           prices: Prices = Prices()) -> CostAdvice:
    budget, budget_line = budget_advice(best, duration_s)
    spot, spot_lines = spot_advice(best, facts, provider, prices)
    return CostAdvice({**spot, "budget": budget}, [*spot_lines, budget_line])
