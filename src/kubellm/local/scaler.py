"""The autoscaler loop: signals from the replicas and the gateway -> policy -> processes.

The policy is :func:`kubellm.autoscale.decide`, the one the cluster uses; this module
only gathers :class:`~kubellm.autoscale.Signals` and applies the decision. The
:class:`Activator` is the gateway's scale-from-zero hook: a request that finds no ready
replica is held there while this loop starts one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from kubellm.autoscale import Decision, ScalerState, ScalingPolicy, Signals, decide
from kubellm.local.supervisor import Supervisor


class Activator:
    """Holds requests while no replica is ready, and tells the loop they are waiting."""

    def __init__(self, supervisor: Supervisor, wake: asyncio.Event) -> None:
        self._supervisor = supervisor
        self._wake = wake

    async def __call__(self, model: str) -> None:
        """Return once a replica is ready (the gateway bounds the wait with its own timeout)."""
        self._wake.set()
        while not self._supervisor.ready():
            changed = self._supervisor.ready_changed
            try:
                await asyncio.wait_for(changed.wait(), timeout=0.5)
            except TimeoutError:
                self._wake.set()  # still nothing ready: keep the loop looking


def gather_signals(supervisor: Supervisor, held: int, in_flight: int) -> Signals:
    """Sum and average what the ready replicas last reported."""
    scraped = [r.metrics for r in supervisor.ready() if r.metrics is not None]
    live = len(supervisor.live())
    if not scraped:
        return Signals(replicas=live, ready=0, waiting=None, running=None, kv_usage=None, held=held,
                       in_flight=in_flight)
    return Signals(
        replicas=live,
        ready=len(scraped),
        waiting=sum(m.waiting for m in scraped),
        running=sum(m.running for m in scraped),
        kv_usage=sum(m.kv_usage for m in scraped) / len(scraped),
        held=held,
        in_flight=in_flight,
    )


@dataclass
class ScalerLoop:
    supervisor: Supervisor
    policy: ScalingPolicy
    clock: Callable[[], float]
    wake: asyncio.Event
    """Set by the :class:`Activator` so a held request is seen before the next tick."""
    held: Callable[[], int]
    """Requests the gateway holds while no replica is ready."""
    in_flight: Callable[[], int]
    """Requests in flight through the gateway."""
    outstanding: Callable[[], dict[str, int]] = dict
    """Requests in flight through the gateway per engine URL."""
    tick_s: float = 1.0
    on_decision: Callable[[Decision], None] = lambda _: None

    def __post_init__(self) -> None:
        self.state = ScalerState()
        self.last: Decision | None = None

    async def tick(self) -> Decision:
        await self.supervisor.refresh_metrics(self.outstanding())
        signals = gather_signals(self.supervisor, self.held(), self.in_flight())
        decision = decide(signals, self.policy, self.state, self.clock())
        self.state, self.last = decision.state, decision
        if decision.replicas != signals.replicas:
            self.on_decision(decision)
        await self.supervisor.scale_to(decision.replicas)
        return decision

    async def run(self) -> None:
        """Tick forever; a held request wakes the loop at once instead of a tick later."""
        while True:
            await self.tick()
            try:
                await asyncio.wait_for(self.wake.wait(), timeout=self.tick_s)
            except TimeoutError:
                pass
            self.wake.clear()
