from __future__ import annotations

from kubellm.gateway.breaker import CircuitBreaker
from kubellm.gateway.clock import FakeClock


def test_breaker_cycle():
    clock = FakeClock()
    b = CircuitBreaker(clock, failures=2, open_s=5.0)
    b.on_failure()
    assert b.state == "closed" and b.allows()
    b.on_failure()
    assert b.state == "open" and not b.allows()
    clock.advance(5.0)
    assert b.state == "half-open" and b.allows()
    b.on_attempt()
    assert not b.allows()  # one trial at a time
    b.on_failure()
    assert b.state == "open"
    clock.advance(5.0)
    b.on_attempt()
    b.on_success()
    assert b.state == "closed" and b.allows()


def test_success_resets_the_count():
    b = CircuitBreaker(FakeClock(), failures=2, open_s=1.0)
    b.on_failure()
    b.on_success()
    b.on_failure()
    assert b.state == "closed"
