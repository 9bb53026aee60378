"""Fault injection decisions, drawn per request from a seeded generator (no I/O)."""

from __future__ import annotations

import random
from dataclasses import dataclass

from kubellm.sim.config import FaultConfig


@dataclass(frozen=True, slots=True)
class FaultPlan:
    """What goes wrong with one request (all false/zero for a healthy request)."""

    error_status: int | None = None
    hang: bool = False
    spike_s: float = 0.0
    die_after_tokens: int | None = None
    crash: bool = False


HEALTHY = FaultPlan()


class FaultInjector:
    """Decides each request's faults; ``crash_after_requests`` counts every request."""

    def __init__(self, config: FaultConfig, engine_index: int) -> None:
        self._cfg = config
        self._rng = random.Random((config.seed << 8) ^ engine_index)
        self._seen = 0
        self._active = any((config.error_rate, config.spike_rate, config.die_mid_stream_rate,
                            config.hang_rate)) or config.crash_after_requests is not None

    def plan(self) -> FaultPlan:
        if not self._active:
            return HEALTHY
        cfg, rng = self._cfg, self._rng
        self._seen += 1
        if cfg.crash_after_requests is not None and self._seen > cfg.crash_after_requests:
            return FaultPlan(crash=True)
        if cfg.error_rate and rng.random() < cfg.error_rate:
            return FaultPlan(error_status=cfg.error_status)
        if cfg.hang_rate and rng.random() < cfg.hang_rate:
            return FaultPlan(hang=True)
        spike = cfg.spike_ms / 1000.0 if cfg.spike_rate and rng.random() < cfg.spike_rate else 0.0
        die = cfg.die_after_tokens if cfg.die_mid_stream_rate and rng.random() < cfg.die_mid_stream_rate else None
        return FaultPlan(spike_s=spike, die_after_tokens=die)
