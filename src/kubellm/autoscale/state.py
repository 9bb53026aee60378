"""What the policy remembers between ticks: recent recommendations and last activity."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ScalerState:
    recommendations: tuple[tuple[float, int], ...] = ()
    """(time, raw recommendation) pairs inside the longest stabilization window."""
    last_active: float | None = None
    """When the service last had work; None: never seen active (counts as idle since start)."""
    started: float | None = None
    """The first tick's time, so idleness before any request is measured from start."""

    def remember(self, now: float, recommendation: int, horizon: float, active: bool) -> ScalerState:
        """This state plus one recommendation, dropping what fell out of the horizon."""
        kept = tuple((t, r) for t, r in self.recommendations if now - t <= horizon)
        return ScalerState(
            recommendations=(*kept, (now, recommendation)),
            last_active=now if active else self.last_active,
            started=self.started if self.started is not None else now,
        )

    def within(self, now: float, window: float) -> list[int]:
        """Recommendations made in the last *window* seconds (this tick's included)."""
        return [r for t, r in self.recommendations if now - t <= window]

    def idle_for(self, now: float) -> float:
        since = self.last_active if self.last_active is not None else self.started
        return 0.0 if since is None else now - since
