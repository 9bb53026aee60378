"""The composition root of ``kubellm up``: spec in, processes + gateway running until stop.

Order matters for failing fast: the serving mode and the engine's prerequisites are
checked, and the model found or pulled, before any process starts; then the gateway
binds its port, the first replicas start, and only when one is ready is the base URL
printed. Shutdown runs in reverse, in a ``finally``: gateway closed, every replica's
process group stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field
from rich.console import Console
from rich.live import Live

from kubellm.autoscale import ScalingPolicy
from kubellm.gateway.discovery import LocalDiscovery
from kubellm.local.gateway_link import LocalGateway, gateway_config_for, serve_gateway
from kubellm.local.launchers import Launcher, check_engine, check_serving_mode, launcher_for
from kubellm.local.model import resolve_model
from kubellm.local.scaler import Activator, ScalerLoop
from kubellm.local.supervisor import Supervisor
from kubellm.local.view import replica_table
from kubellm.spec import LLMService


# Engines listen on loopback whatever --host says: only the gateway (auth, limits) is
# meant to be reachable; an engine port would bypass both.
ENGINE_HOST = "127.0.0.1"
LOOPBACK = ("127.0.0.1", "localhost", "::1")


class UpOptions(BaseModel):
    """Flags of ``kubellm up`` (read once, at the edge)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=0, le=65535)] = 8000
    cache_dir: Path
    model_file: Path | None = None
    api_keys_file: Path | None = None
    live: bool = True
    tick_s: Annotated[float, Field(gt=0)] = 1.0
    drain_s: Annotated[float, Field(ge=0)] = 30.0


def prepare(service: LLMService, options: UpOptions, on_event: Callable[[str], None] = lambda _: None) -> Launcher:
    """Everything that can fail before a process starts: mode, engine, model files."""
    check_serving_mode(service)
    check_engine(service)
    model = resolve_model(service, options.cache_dir, options.model_file, on_event)
    return launcher_for(service, model, ENGINE_HOST)


def banner(base_url: str, model: str, api_key: bool) -> str:
    auth = ' -H "Authorization: Bearer $KUBELLM_API_KEY"' if api_key else ""
    body = '{"model": "%s", "messages": [{"role": "user", "content": "Hello!"}]}' % model
    return (f"OpenAI base URL: {base_url}/v1\n"
            f"Try it:\n  curl -s {base_url}/v1/chat/completions -H 'Content-Type: application/json'{auth} "
            f"-d '{body}'\n"
            "Ctrl-C stops everything.")


async def run_up(service: LLMService, options: UpOptions, console: Console, stop: asyncio.Event,
                 clock: Callable[[], float] = time.monotonic) -> None:
    """Run *service* locally until *stop* is set."""
    events = _event_printer(console)
    # A pull blocks for as long as the download takes: off the loop, so signals still land.
    launcher = await asyncio.to_thread(prepare, service, options, events)
    if options.host not in LOOPBACK and options.api_keys_file is None:
        events(f"[yellow]warning:[/] the gateway listens on {options.host} with no API keys: anyone who can reach "
               "it can use the model; add spec.security.apiKeys and --api-keys-file")
    config = gateway_config_for(service, options.api_keys_file)
    policy = ScalingPolicy.from_spec(service.spec.scaling)
    served = service.spec.model.served_name
    log_dir = options.cache_dir / "logs" / service.name / time.strftime("%Y%m%d-%H%M%S")
    discovery = LocalDiscovery()
    supervisor = Supervisor(launcher, lambda urls: discovery.set_endpoints(served, urls), log_dir,
                            ENGINE_HOST, options.drain_s, events)
    wake = asyncio.Event()
    try:
        async with serve_gateway(config, options.host, options.port, discovery, Activator(supervisor, wake)) as gw:
            scaler = ScalerLoop(supervisor, policy, clock, wake, lambda: gw.held(served),
                                lambda: gw.gateway.in_flight, gw.outstanding, options.tick_s,
                                lambda d: events(f"autoscaler: {d.reason}"))
            if not await _first_replicas(supervisor, policy, launcher, stop):
                return  # stopped while the first replicas were starting
            await gw.wait_routable(served, 30.0)  # print the URL only once a request would be served
            base_url = f"http://{options.host}:{gw.port}"
            console.print(f"[bold green]{service.name} is ready[/]: {len(supervisor.ready())} replica(s) of "
                          f"{service.spec.engine.kind} serving model {served!r}")
            console.print(banner(base_url, served, options.api_keys_file is not None), soft_wrap=True)
            await _serve(scaler, supervisor, gw, service.name, base_url, console, options.live, stop)
    finally:
        await supervisor.shutdown()
        events("all replicas stopped")


async def _first_replicas(supervisor: Supervisor, policy: ScalingPolicy, launcher: Launcher,
                          stop: asyncio.Event) -> bool:
    """Start minReplicas and wait for one to be ready; False when *stop* came first."""
    if stop.is_set():
        return False
    await supervisor.scale_to(policy.floor)
    ready = asyncio.create_task(supervisor.wait_ready(launcher(0).ready_timeout_s + 5.0))
    stopped = asyncio.create_task(stop.wait())
    await asyncio.wait({ready, stopped}, return_when=asyncio.FIRST_COMPLETED)
    stopped.cancel()
    if not ready.done():
        ready.cancel()
        await asyncio.gather(ready, return_exceptions=True)
        return False
    ready.result()  # raises the start failure, if any
    return True


async def _serve(scaler: ScalerLoop, supervisor: Supervisor, gw: LocalGateway, name: str, base_url: str,
                 console: Console, live: bool, stop: asyncio.Event) -> None:
    task = asyncio.create_task(scaler.run(), name="autoscaler")
    try:
        view = Live(console=console, auto_refresh=False, transient=True) if live else contextlib.nullcontext()
        with view as shown:
            while not stop.is_set() and not task.done():
                if isinstance(shown, Live):
                    shown.update(replica_table(name, base_url, supervisor.replicas, gw.outstanding(), scaler.last),
                                refresh=True)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=0.5)
        if task.done():
            task.result()  # the loop died: surface why
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def _event_printer(console: Console) -> Callable[[str], None]:
    def event(message: str) -> None:
        console.print(f"[dim]{time.strftime('%H:%M:%S')}[/] {message}", soft_wrap=True, highlight=False)

    return event

