"""Run a fleet in the foreground until SIGINT/SIGTERM (what ``kubellm sim`` does)."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable, Sequence

from kubellm.sim.config import SimConfig
from kubellm.sim.fleet import start_fleet, stop_fleet
from kubellm.sim.server import EngineServer


async def serve(config: SimConfig, replicas: int, host: str, port: int,
                announce: Callable[[list[str]], None], drain_s: float = 0.0) -> int:
    """Serve until a signal or until every engine crashed; returns the exit status. After a
    signal, drain for *drain_s* seconds (``EngineServer.begin_drain``) before stopping."""
    fleet = await start_fleet(config, replicas, host, port or None)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    announce(list(fleet))
    try:
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), timeout=0.5)
            except TimeoutError:
                if all(s.crashed for s in fleet.servers):
                    return 1  # an injected crash of the whole fleet exits as a crash would
        await drain(fleet.servers, drain_s)
        return 0
    finally:
        await stop_fleet(fleet.servers)


async def drain(servers: Sequence[EngineServer], seconds: float) -> None:
    if seconds <= 0:
        return
    for server in servers:
        server.begin_drain()
    await asyncio.sleep(seconds)


def run(config: SimConfig, replicas: int, host: str, port: int,
        announce: Callable[[list[str]], None], drain_s: float = 0.0) -> int:
    """Run :func:`serve` on uvloop when it is installed, else on asyncio's loop."""
    try:
        import uvloop
    except ImportError:  # uvloop is optional (not on Windows)
        return asyncio.run(serve(config, replicas, host, port, announce, drain_s))
    return uvloop.run(serve(config, replicas, host, port, announce, drain_s))
