"""The set of engine replicas: grow and shrink it, watch it, tell the gateway who is ready.

Each replica goes starting -> ready -> draining -> stopped (or starting -> failed). The
gateway only ever sees ready replicas: ``on_endpoints`` is called with the ready URLs
after every change, before a replica is stopped, so no new request reaches it; a
draining replica is stopped once its engine reports nothing running or waiting (or the
drain deadline passes), so scaling down fails no request in flight.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import httpx

from kubellm.local.engines import EngineLaunch
from kubellm.local.errors import EngineStartError
from kubellm.local.metrics import ReplicaMetrics, scrape
from kubellm.local.ports import free_port
from kubellm.local.process import EngineProcess

State = Literal["starting", "ready", "draining", "failed"]


@dataclass(eq=False)
class Replica:
    index: int
    process: EngineProcess
    state: State = "starting"
    metrics: ReplicaMetrics | None = None
    error: str | None = None
    task: asyncio.Task[None] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return self.process.url

    @property
    def busy(self) -> float:
        return 0.0 if self.metrics is None else self.metrics.waiting + self.metrics.running


class Supervisor:
    """Owns the engine processes of one service."""

    def __init__(self, launcher: Callable[[int], EngineLaunch], on_endpoints: Callable[[list[str]], None],
                 log_dir: Path, host: str = "127.0.0.1", drain_s: float = 30.0,
                 on_event: Callable[[str], None] = lambda _: None) -> None:
        self._launcher = launcher
        self._on_endpoints = on_endpoints
        self._on_event = on_event
        self._log_dir = log_dir
        self._host = host
        self._drain_s = drain_s
        self._numbers = itertools.count()
        self._client = httpx.AsyncClient()
        self.replicas: list[Replica] = []
        self.ready_changed = asyncio.Event()

    # --- views -------------------------------------------------------------------------
    def live(self) -> list[Replica]:
        """Replicas that count towards the desired number (starting or ready)."""
        return [r for r in self.replicas if r.state in ("starting", "ready")]

    def ready(self) -> list[Replica]:
        return [r for r in self.replicas if r.state == "ready"]

    def pids(self) -> list[int]:
        return [r.process.pid for r in self.replicas if r.process.pid is not None and not r.process.exited]

    # --- changes -----------------------------------------------------------------------
    async def scale_to(self, count: int) -> None:
        """Start or drain replicas until *count* are starting or ready."""
        self._reap()
        live = self.live()
        for _ in range(count - len(live)):
            await self._add()
        if len(live) > count:
            # Drain those that serve least first: starting ones, then the least busy.
            victims = sorted(live, key=lambda r: (r.state == "ready", r.busy, -r.index))[: len(live) - count]
            for replica in victims:
                self._drain(replica)

    async def _add(self) -> None:
        number = next(self._numbers)
        port = free_port(self._host)
        url = f"http://{self._host}:{port}"
        process = EngineProcess(self._launcher(port), url, self._log_dir / f"replica-{number}.log")
        replica = Replica(number, process)
        self.replicas.append(replica)
        self._on_event(f"replica {number} starting on {url}")
        await process.start()
        replica.task = asyncio.create_task(self._bring_up(replica), name=f"replica-{number}")

    async def _bring_up(self, replica: Replica) -> None:
        try:
            await replica.process.wait_ready(self._client)
        except EngineStartError as exc:
            replica.state, replica.error = "failed", str(exc)
            self._on_event(f"replica {replica.index} failed: {exc}")
            await replica.process.stop(grace_s=2.0)
            return
        if replica.state == "starting":
            replica.state = "ready"
            self._on_event(f"replica {replica.index} ready on {replica.url}")
            self._publish()

    def _drain(self, replica: Replica) -> None:
        was_ready = replica.state == "ready"
        if replica.task is not None and not replica.task.done():
            replica.task.cancel()
        replica.state = "draining"
        self._publish()
        self._on_event(f"replica {replica.index} draining")
        replica.task = asyncio.create_task(self._stop_when_idle(replica, wait=was_ready))

    async def _stop_when_idle(self, replica: Replica, wait: bool) -> None:
        deadline = asyncio.get_running_loop().time() + self._drain_s
        # The gateway may still be streaming to it: one short pause lets routing settle,
        # then wait for the engine's own counters to reach zero.
        if wait and replica.process.launch.metrics_path is None:
            await asyncio.sleep(min(self._drain_s, 5.0))
        while wait and replica.process.launch.metrics_path and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.5)
            metrics = await scrape(self._client, replica.url + replica.process.launch.metrics_path)
            if metrics is None or metrics.waiting + metrics.running == 0:
                break
        await replica.process.stop()
        if replica in self.replicas:
            self.replicas.remove(replica)
        self._on_event(f"replica {replica.index} stopped")

    def _reap(self) -> None:
        """Forget failed replicas and notice ready ones that died, so they are replaced."""
        for replica in list(self.replicas):
            if replica.state == "ready" and replica.process.exited:
                replica.state, replica.error = "failed", f"exited: {replica.process.log_tail(5)}"
                self._on_event(f"replica {replica.index} exited unexpectedly")
                self._publish()
            if replica.state == "failed" and (replica.task is None or replica.task.done()):
                self.replicas.remove(replica)

    def _publish(self) -> None:
        self._on_endpoints([r.url for r in self.ready()])
        self.ready_changed.set()
        self.ready_changed = asyncio.Event()

    async def refresh_metrics(self, outstanding: Mapping[str, int]) -> None:
        """Scrape every ready replica's metrics (in parallel). An engine without /metrics
        (llama-cpp-python's server) is credited with the requests the gateway has in flight
        to it as running, so it can still be autoscaled."""
        ready = self.ready()
        scraped = [r for r in ready if r.process.launch.metrics_path]
        results = await asyncio.gather(*(scrape(self._client, r.url + str(r.process.launch.metrics_path))
                                         for r in scraped))
        for replica, metrics in zip(scraped, results, strict=True):
            replica.metrics = metrics
        for replica in ready:
            if not replica.process.launch.metrics_path:
                replica.metrics = ReplicaMetrics(running=float(outstanding.get(replica.url, 0)))

    async def wait_ready(self, timeout: float) -> None:
        """Wait until at least one replica is ready; raise the first failure if all failed."""
        async with asyncio.timeout(timeout):
            while not self.ready():
                failed = [r for r in self.replicas if r.state == "failed"]
                if failed and len(failed) == len(self.replicas):
                    raise EngineStartError(failed[0].error or "every replica failed to start")
                waiter = asyncio.create_task(self.ready_changed.wait())
                await asyncio.wait({waiter}, timeout=0.2)
                waiter.cancel()

    async def shutdown(self) -> None:
        """Stop every replica (process groups included) and close the HTTP client."""
        self._on_endpoints([])
        for replica in self.replicas:
            if replica.task is not None and not replica.task.done():
                replica.task.cancel()
        await asyncio.gather(*(r.process.stop(grace_s=5.0) for r in self.replicas), return_exceptions=True)
        self.replicas.clear()
        await self._client.aclose()
