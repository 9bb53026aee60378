"""Composition root: builds engines from a :class:`SimConfig` and serves them.

``run_engine`` starts one engine on a port (0: a free one); ``run_fleet`` starts N on
one event loop, on consecutive ports from ``base_port`` or on free ports. Both are async
context managers that stop everything on exit.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager
from typing import overload

from kubellm.sim import metrics, textgen
from kubellm.sim.config import SimConfig
from kubellm.sim.engine_api import Engine
from kubellm.sim.errors import SimConfigError
from kubellm.sim.fixed import FixedLatencyEngine
from kubellm.sim.kvcache import KvEvent
from kubellm.sim.profiles import Profile, get_profile
from kubellm.sim.server import EngineServer


def resolve_limits(config: SimConfig, profile: Profile) -> dict[str, int]:
    """Engine limits: the config's where set, else the profile's."""
    return {
        "max_model_len": config.max_model_len or profile.max_model_len,
        "max_num_seqs": config.max_num_seqs or profile.max_num_seqs,
        "max_num_batched_tokens": config.max_num_batched_tokens or profile.max_num_batched_tokens,
        "num_gpu_blocks": config.num_gpu_blocks or profile.num_gpu_blocks,
    }


def build_engine(config: SimConfig, profile: Profile, stats: metrics.EngineStats, index: int,
                 events: list[KvEvent] | None = None) -> Engine:
    """The engine a config asks for: fixed latency, or the cost model of its profile."""
    if config.fixed_ttft_ms is not None and config.fixed_tpot_ms is not None:
        return FixedLatencyEngine(config.fixed_ttft_ms / 1000.0, config.fixed_tpot_ms / 1000.0, stats,
                                  config.time_scale)
    from kubellm.sim.engine import CostModelEngine  # the cost model pulls in more modules

    return CostModelEngine(config, profile, resolve_limits(config, profile), stats, index, events)


def build_server(config: SimConfig, index: int, vocab: textgen.OutputVocab) -> EngineServer:
    profile = get_profile(config.profile)
    limits = resolve_limits(config, profile)
    stats = metrics.EngineStats()
    cache_info = {"block_size": str(config.block_size), "num_gpu_blocks": str(limits["num_gpu_blocks"]),
                  "enable_prefix_caching": str(config.enable_prefix_caching),
                  "cache_dtype": "auto", "gpu_memory_utilization": "0.9"}
    collector = metrics.VllmCollector(stats, config.model, index, cache_info, config.max_loras)
    events: list[KvEvent] | None = [] if config.kv_events_port is not None and not config.fixed_latency else None
    engine = build_engine(config, profile, stats, index, events)
    return EngineServer(config, engine, vocab, limits["max_model_len"], index, collector, events)


class Fleet(Sequence[str]):
    """The base URLs of a running fleet (``http://host:port``), plus its servers."""

    def __init__(self, servers: list[EngineServer], host: str) -> None:
        self.servers = servers
        self.urls = [f"http://{host}:{s.port}" for s in servers]

    @overload
    def __getitem__(self, i: int) -> str: ...
    @overload
    def __getitem__(self, i: slice) -> Sequence[str]: ...
    def __getitem__(self, i: int | slice) -> str | Sequence[str]:
        return self.urls[i]

    def __len__(self) -> int:
        return len(self.urls)

    def __iter__(self) -> Iterator[str]:
        return iter(self.urls)

    def __repr__(self) -> str:
        return f"Fleet({self.urls!r})"


async def start_fleet(config: SimConfig, replicas: int = 1, host: str = "127.0.0.1",
                      base_port: int | None = None) -> Fleet:
    """Start *replicas* engines; ports ``base_port + i`` or free ports when None."""
    if replicas < 1:
        raise SimConfigError(f"replicas must be at least 1, got {replicas}")
    vocab = textgen.build_vocab()
    servers: list[EngineServer] = []
    try:
        for i in range(replicas):
            server = build_server(config, i, vocab)
            servers.append(server)
            await server.start(host, 0 if base_port is None else base_port + i)
    except OSError as exc:
        await stop_fleet(servers)
        raise SimConfigError(f"cannot listen on {host}: {exc}") from exc
    except BaseException:
        await stop_fleet(servers)
        raise
    return Fleet(servers, host)


async def stop_fleet(servers: Sequence[EngineServer]) -> None:
    await asyncio.gather(*(s.stop() for s in servers), return_exceptions=True)


@asynccontextmanager
async def run_fleet(config: SimConfig, replicas: int = 1, host: str = "127.0.0.1",
                    base_port: int | None = None) -> AsyncIterator[Fleet]:
    """``async with run_fleet(SimConfig(...), replicas=N) as urls:`` N engines in this loop."""
    fleet = await start_fleet(config, replicas, host, base_port)
    try:
        yield fleet
    finally:
        await stop_fleet(fleet.servers)


@asynccontextmanager
async def run_engine(config: SimConfig, host: str = "127.0.0.1", port: int = 0) -> AsyncIterator[EngineServer]:
    """One engine on *port* (0: a free port); the server's ``port`` says which."""
    fleet = await start_fleet(config, 1, host, port or None)
    try:
        yield fleet.servers[0]
    finally:
        await stop_fleet(fleet.servers)
