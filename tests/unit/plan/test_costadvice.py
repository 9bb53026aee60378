"""What `kubellm plan` recommends for spec.cost, from one run's figures (table-driven)."""

from __future__ import annotations

from typing import Any

import pytest

from kubellm.plan.costadvice import ServiceFacts, advise, daily_budget
from kubellm.plan.report import Prices, Summary


def summary(gpu_hours: float) -> Summary:
    prices = Prices()
    return Summary(policy="kubellm rate=4/s", requests=100, attainment=0.995, ttft_p50=0.1, ttft_p99=0.5,
                   tpot_p99=0.03, gpu_hours=gpu_hours, cost_on_demand=gpu_hours * prices.on_demand,
                   cost_spot=gpu_hours * prices.spot, cold_starts=0, held=0, max_hold=0.0, peak_replicas=2, unfinished=0)


@pytest.mark.parametrize(("gpu_hours", "duration_h", "budget"), [
    (100.0, 24.0, 125.0),  # a day: the plan's hours plus 25 %
    (15.7, 8.0, 58.9),     # 8 h scaled to 24 h: 47.1, plus 25 %
    (60.3, 3.0, 603.0),
])
def test_the_budget_is_the_planned_daily_use_plus_a_quarter(gpu_hours: float, duration_h: float, budget: float) -> None:
    assert daily_budget(gpu_hours, duration_h * 3600) == budget
    advice = advise(summary(gpu_hours), duration_h * 3600, ServiceFacts(2, True, False), None)
    assert advice.block["budget"] == {"acceleratorHours": budget, "window": "1d"}


@pytest.mark.parametrize(("facts", "provider", "cost"), [
    (ServiceFacts(2, True, False), None, {}),
    (ServiceFacts(3, True, False), "gke", {"spot": {"provider": "gke", "minAvailable": 2}, "priorityClass": {}}),
    (ServiceFacts(1, True, False), "eks", {"spot": {"provider": "eks"}, "priorityClass": {}}),
    (ServiceFacts(4, False, False), "aks", {"spot": {"provider": "aks"}, "priorityClass": {}}),
    (ServiceFacts(2, True, True), "karpenter", {"spot": {"provider": "karpenter", "minAvailable": 1}}),
])
def test_spot_is_written_only_for_a_named_provider_with_a_floor_below_min_replicas(
        facts: ServiceFacts, provider: str | None, cost: dict[str, Any]) -> None:
    advice = advise(summary(10.0), 86_400, facts, provider)
    assert {k: v for k, v in advice.block.items() if k != "budget"} == cost
    text = "\n".join(advice.lines)
    assert "spot: 16 USD instead of 40 on demand" in text
    assert ("--spot gke|eks|karpenter|aks writes spec.cost.spot" in text) == (provider is None)
    if provider and facts.min_replicas < 2:
        assert "minReplicas 2 keeps one up" in text
