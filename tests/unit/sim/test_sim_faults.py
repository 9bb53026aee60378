"""Fault decisions: rates hold over many requests, seeds reproduce, crash counts requests."""

from __future__ import annotations

from kubellm.sim.config import FaultConfig
from kubellm.sim.faults import FaultInjector


def test_error_rate_is_respected_and_reproducible() -> None:
    cfg = FaultConfig(error_rate=0.3, error_status=429, seed=4)
    inj_a, inj_b = FaultInjector(cfg, 0), FaultInjector(cfg, 0)
    a = [inj_a.plan().error_status for _ in range(2000)]
    b = [inj_b.plan().error_status for _ in range(2000)]
    assert a == b
    share = sum(1 for s in a if s == 429) / len(a)
    assert 0.25 < share < 0.35


def test_crash_after_n_requests() -> None:
    inj = FaultInjector(FaultConfig(crash_after_requests=3), 0)
    assert [inj.plan().crash for _ in range(5)] == [False, False, False, True, True]


def test_healthy_config_injects_nothing() -> None:
    inj = FaultInjector(FaultConfig(), 0)
    plan = inj.plan()
    assert plan.error_status is None and not plan.hang and not plan.crash and plan.spike_s == 0
