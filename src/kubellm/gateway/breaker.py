"""A per-endpoint circuit breaker: closed -> open after N consecutive failures -> half-open.

Open rejects the endpoint until ``open_s`` has passed; then one trial request is let
through (half-open): success closes it, failure opens it again. Pure over a clock.
"""

from __future__ import annotations

from kubellm.gateway.clock import Clock


class CircuitBreaker:
    def __init__(self, clock: Clock, *, failures: int, open_s: float) -> None:
        self._clock = clock
        self._threshold = failures
        self._open_s = open_s
        self._consecutive = 0
        self._opened_at: float | None = None
        self._trial_in_flight = False

    @property
    def state(self) -> str:
        if self._opened_at is None:
            return "closed"
        return "half-open" if self._clock.now() - self._opened_at >= self._open_s else "open"

    def allows(self) -> bool:
        """Whether a request may be sent now (a half-open breaker allows one trial)."""
        if self._opened_at is None:  # closed: the common case, asked several times per request
            return True
        state = self.state
        return state == "closed" or (state == "half-open" and not self._trial_in_flight)

    def on_attempt(self) -> None:
        if self.state == "half-open":
            self._trial_in_flight = True

    def on_abandoned(self) -> None:
        """The attempt ended without a verdict on the endpoint (its client went away, or the
        gateway failed): a half-open breaker lets another trial through instead of waiting."""
        self._trial_in_flight = False

    def on_success(self) -> None:
        self._consecutive = 0
        self._opened_at = None
        self._trial_in_flight = False

    def on_failure(self) -> None:
        self._consecutive += 1
        self._trial_in_flight = False
        if self._opened_at is not None or self._consecutive >= self._threshold:
            self._opened_at = self._clock.now()
