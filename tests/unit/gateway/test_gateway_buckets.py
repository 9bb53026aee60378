"""The pure token-bucket arithmetic of tenant limits (gateway/buckets.py)."""

from __future__ import annotations

import pytest

from kubellm.gateway import buckets
from kubellm.gateway.buckets import Levels, Limits, Refusal

RPM2 = Limits(rpm=2, tpm=0)
TPM600 = Limits(rpm=0, tpm=600)


@pytest.mark.parametrize(("levels", "limits", "now", "expected"), [
    (None, RPM2, 5.0, Levels(5.0, 2, 2, 0, 0)),                        # never seen: full
    (Levels(0.0, 0.0, 2, 0, 0), RPM2, 15.0, Levels(15.0, 0.5, 2, 0, 0)),  # 2 per minute: 0.5 in 15 s
    (Levels(0.0, 1.0, 2, 0, 0), RPM2, 600.0, Levels(600.0, 2, 2, 0, 0)),  # never above the capacity
    (Levels(0.0, -300, 0, -300, 600), TPM600, 30.0, Levels(30.0, 0, 0, 0.0, 600)),  # owed tokens refill too
    (Levels(10.0, 1.0, 2, 0, 0), RPM2, 9.0, Levels(10.0, 1.0, 2, 0, 0)),  # a clock read before another's
    (Levels(0.0, 1.0, 2, 0, 0), Limits(1, 0), 0.0, Levels(0.0, 1.0, 1, 0, 0)),  # lowered: clamped
    (Levels(0.0, 1.0, 2, 0, 0), Limits(4, 0), 30.0, Levels(30.0, 3.0, 4, 0, 0)),  # raised: refills at the new rate
    (Levels(0.0, 0.0, 0, 0, 0), Limits(2, 100), 1.0, Levels(1.0, 2, 2, 100, 100)),  # added limits start full
    (Levels(0.0, 0.0, 2, 5, 100), Limits(0, 0), 1.0, Levels(1.0, 0, 0, 0, 0)),  # removed limits: nothing kept
])
def test_current_refills_and_follows_reloaded_limits(levels, limits, now, expected):
    assert buckets.current(levels, limits, now) == pytest.approx(expected)


@pytest.mark.parametrize(("levels", "after", "refusal"), [
    (Levels(0, 2, 2, 0, 0), Levels(0, 1, 2, 0, 0), None),                    # takes one request
    (Levels(0, 0.5, 2, 0, 0), Levels(0, 0.5, 2, 0, 0), Refusal("requests", 15.0)),  # 0.5 missing at 2/min
    (Levels(0, 0, 0, 1, 600), Levels(0, 0, 0, 1, 600), None),                 # one token left is enough
    (Levels(0, 0, 0, -300, 600), Levels(0, 0, 0, -300, 600), Refusal("tokens", 30.1)),  # (300 + 1) at 10/s
    (Levels(0, 0, 2, -1, 600), Levels(0, 0, 2, -1, 600), Refusal("requests", 30.0)),  # requests are named first
    (Levels(0, 1, 2, 0, 600), Levels(0, 1, 2, 0, 600), Refusal("tokens", 0.1)),  # no request taken when refused
    (Levels(0, 0, 0, 0, 0), Levels(0, 0, 0, 0, 0), None),                     # no limits at all
])
def test_admit(levels, after, refusal):
    got, why = buckets.admit(levels)
    assert got == after
    assert why == (None if refusal is None else pytest.approx(refusal))


def test_charge_takes_the_tokens_used_and_may_go_negative():
    assert buckets.charge(Levels(0, 0, 0, 600, 600), 900) == Levels(0, 0, 0, -300, 600)
    assert buckets.charge(Levels(0, 2, 2, 0, 0), 900) == Levels(0, 2, 2, 0, 0)  # no TPM: nothing to charge


@pytest.mark.parametrize(("levels", "now", "idle"), [
    (Levels(0, 2, 2, 600, 600), 0.0, True),
    (Levels(0, 1, 2, 600, 600), 29.9, False),
    (Levels(0, 1, 2, 600, 600), 30.0, True),     # one request refills in 30 s at 2/min
    (Levels(0, 2, 2, -300, 600), 89.9, False),   # 900 tokens owed take 90 s
    (Levels(0, 2, 2, -300, 600), 90.0, True),
])
def test_idle_records_equal_fresh_ones(levels, now, idle):
    assert buckets.idle(levels, now) is idle
    if idle:
        limits = Limits(levels.rpm_cap, levels.tpm_cap)
        assert buckets.current(levels, limits, now) == buckets.full(limits, now)


def test_a_burst_of_the_capacity_then_the_refill_rate():
    """Driven the way the stores drive it: rpm 3 admits 3 at once, then one every 20 s."""
    limits: Limits = Limits(3, 0)
    levels: Levels | None = None

    def attempt(now: float) -> Refusal | None:
        nonlocal levels
        levels, refusal = buckets.admit(buckets.current(levels, limits, now))
        return refusal

    assert [attempt(0.0) for _ in range(3)] == [None] * 3
    assert attempt(0.0) == Refusal("requests", 20.0)
    admitted = [t for t in range(5, 65, 5) if attempt(float(t)) is None]
    assert admitted == [20, 40, 60]
