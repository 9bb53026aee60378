"""Running a gateway as a process: listen, reload the config on change, drain on SIGTERM."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from aiohttp import web

from kubellm.gateway.app import GATEWAY, build_gateway
from kubellm.gateway.config import GatewayConfig, load_config
from kubellm.gateway.errors import ConfigError, GatewayError
from kubellm.gateway.k8s import KubernetesDiscovery
from kubellm.gateway.server import FastServer
from kubellm.gateway.limits import SharedLimits
from kubellm.gateway.telemetry import TRACER_NAME, configure_tracing
from kubellm.gateway.tenants import auth_files
from kubellm.gateway.workers import PeerMetrics, WorkerSlot, register_worker

log = logging.getLogger("kubellm.gateway")


def _stamps(path: Path, config: GatewayConfig) -> tuple[int | None, ...]:
    """Modification times of the config file and of the auth files it names (None: missing)."""
    stamps: list[int | None] = []
    for file in (path, *auth_files(config.auth)):
        try:
            stamps.append(file.stat().st_mtime_ns)
        except OSError:
            stamps.append(None)
    return tuple(stamps)


async def watch_config(path: Path, app: web.Application, interval_s: float = 1.0) -> None:
    """Poll *path* and the auth files it names (API keys, JWKS: a revoked key stops working); a
    change applies the config in place, an invalid one (or an auth file gone) is logged and ignored."""
    gateway = app[GATEWAY]
    last = _stamps(path, gateway.config)
    while True:
        await asyncio.sleep(interval_s)
        stamps = _stamps(path, gateway.config)
        if stamps == last or stamps[0] is None:
            continue
        last = stamps
        try:
            gateway.apply_config(load_config(path))
        except GatewayError as exc:
            log.error("config reload rejected, keeping the running config: %s", exc.message)
            continue
        last = _stamps(path, gateway.config)  # the new config may name other auth files
        log.info("config reloaded from %s", path)


async def drain(app: web.Application, listening: Serving, deadline_s: float) -> None:
    """Stop accepting, let in-flight requests finish for up to *deadline_s*."""
    gateway = app[GATEWAY]
    gateway.draining = True
    await listening.stop_listening()
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline_s
    while gateway.in_flight > 0 and loop.time() < end:
        await asyncio.sleep(0.05)
    if gateway.in_flight:
        log.warning("drain deadline passed with %d request(s) in flight", gateway.in_flight)


class Serving(Protocol):
    """The HTTP server a gateway runs on: aiohttp's, or the fast one (gateway/server.py)."""

    async def start(self, host: str, port: int, slot: WorkerSlot | None) -> int:
        """Set the application up and listen (and on the worker's peer socket); the bound port."""

    async def stop_listening(self) -> None: ...

    async def cleanup(self) -> None: ...


class AiohttpServing:
    def __init__(self, app: web.Application) -> None:
        self.runner = web.AppRunner(app, handler_cancellation=True, access_log=None, shutdown_timeout=1.0)
        self.sites: list[web.BaseSite] = []

    async def start(self, host: str, port: int, slot: WorkerSlot | None) -> int:
        await self.runner.setup()
        self.sites.append(web.TCPSite(self.runner, host, port, backlog=1024, reuse_port=slot is not None))
        if slot is not None:
            self.sites.append(web.UnixSite(self.runner, str(slot.socket_path(slot.index))))
        for site in self.sites:
            await site.start()
        return int(self.runner.addresses[0][1]) if self.runner.addresses else port

    async def stop_listening(self) -> None:
        await self.sites[0].stop()

    async def cleanup(self) -> None:
        await self.runner.cleanup()


class FastServing:
    def __init__(self, app: web.Application) -> None:
        self.server = FastServer(app, max_body_bytes=app[GATEWAY].config.max_body_bytes)

    async def start(self, host: str, port: int, slot: WorkerSlot | None) -> int:
        await self.server.startup()
        bound = await self.server.listen(host, port, reuse_port=slot is not None)
        if slot is not None:
            await self.server.listen_unix(str(slot.socket_path(slot.index)))
        return bound

    async def stop_listening(self) -> None:
        await self.server.stop_listening()

    async def cleanup(self) -> None:
        await self.server.cleanup()


SERVERS: dict[str, Callable[[web.Application], Serving]] = {"aiohttp": AiohttpServing, "fast": FastServing}


def _kube_client() -> object:
    """The API client of kubernetes discovery, made before listening: without a kubeconfig or
    a pod's service account the gateway stops at start with one line, instead of listening with
    a discovery task that died with a traceback."""
    from lightkube import AsyncClient, ConfigError as KubeConfigError

    try:
        return AsyncClient()
    except KubeConfigError as exc:
        raise ConfigError(
            f"the config's kubernetes discovery needs the Kubernetes API: {exc}; run the gateway in a pod "
            "(its service account), or set KUBECONFIG, or list endpoints in the config instead"
        ) from exc


async def serve(config_path: Path, host: str, port: int, ready: asyncio.Event | None = None, *,
                slot: WorkerSlot | None = None, announce: bool = True, server: str | None = None) -> None:
    """Serve until SIGTERM/SIGINT, then drain. With *slot* this process is one of several
    workers (``--workers``): it shares the port (``SO_REUSEPORT``) and serves its peers on a
    Unix socket so that ``/metrics`` covers every worker. *server* (``aiohttp`` or ``fast``)
    overrides the config's ``server``."""
    config = load_config(config_path)
    discovery = [KubernetesDiscovery(config.kubernetes, _kube_client())] if config.kubernetes is not None else []
    tracing = configure_tracing(os.environ)  # None unless OTEL_EXPORTER_OTLP_ENDPOINT is set
    app = build_gateway(config, discovery=discovery, tracer=tracing.get_tracer(TRACER_NAME) if tracing else None)
    if slot is not None:
        app[GATEWAY].peers = PeerMetrics(slot.peers())
        register_worker(app[GATEWAY].metrics.registry, slot)
        if slot.limits is not None:  # tenants' limits hold across the workers (reloads keep this store)
            app[GATEWAY].tenants.limits = SharedLimits.attach(slot.limits)
    listening = SERVERS[server or config.server](app)
    try:
        bound = await listening.start(host, port, slot)
    except OSError:
        # a port in use: close the upstream sessions before the error reaches the user, or
        # aiohttp adds "Unclosed client session" to the one-line message
        await listening.cleanup()
        raise
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    watcher = asyncio.ensure_future(watch_config(config_path, app))
    # objects alive after startup (modules, config, metrics) leave the collector's view, so
    # full collections stay short and do not stall requests
    gc.collect()
    gc.freeze()
    if announce:
        print(f"kubellm gateway listening on http://{host}:{bound}", flush=True)
    if ready is not None:
        ready.set()
    try:
        await stop.wait()
        log.info("SIGTERM: draining for up to %gs", app[GATEWAY].config.timeouts.drain_s)
        await drain(app, listening, app[GATEWAY].config.timeouts.drain_s)
    finally:
        watcher.cancel()
        await listening.cleanup()
        if tracing is not None:
            await asyncio.to_thread(tracing.shutdown)  # export the spans still batched
