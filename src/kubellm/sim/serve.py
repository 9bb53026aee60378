"""Run a fleet in the foreground until SIGINT/SIGTERM (what ``kubellm sim`` does)."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable

from kubellm.sim.config import SimConfig
from kubellm.sim.fleet import start_fleet, stop_fleet


async def serve(config: SimConfig, replicas: int, host: str, port: int,
                announce: Callable[[list[str]], None]) -> int:
    """Serve until a signal or until every engine crashed; returns the exit status."""
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
        return 0
    finally:
        await stop_fleet(fleet.servers)


def run(config: SimConfig, replicas: int, host: str, port: int,
        announce: Callable[[list[str]], None]) -> int:
    """Run :func:`serve` on uvloop when it is installed, else on asyncio's loop."""
    try:
        import uvloop
    except ImportError:  # uvloop is optional (not on Windows)
        return asyncio.run(serve(config, replicas, host, port, announce))
    return uvloop.run(serve(config, replicas, host, port, announce))
