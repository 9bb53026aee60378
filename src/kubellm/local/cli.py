"""Commands of kubellm.local, registered on the main `kubellm` app: ``kubellm up SPEC``."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    """Add this component's commands to *app*."""
    app.command("up", help="Run an LLMService on this machine: engines, gateway, autoscaler. No cluster needed.")(up)


def up(
    spec: Path = typer.Argument(..., help="LLMService YAML file (try examples/quickstart.yaml)"),
    host: str = typer.Option("127.0.0.1", help="address of the gateway and engines"),
    port: int = typer.Option(8000, help="gateway port (0: a free port)"),
    cache_dir: Path | None = typer.Option(None, help="model cache and logs (default ~/.cache/kubellm)"),
    model_file: Path | None = typer.Option(None, help="serve this local model file instead of pulling spec.model.uri"),
    api_keys_file: Path | None = typer.Option(None, help="API keys (one key or tenant:key per line) "
                                                          "for specs with security.apiKeys"),
    live: bool | None = typer.Option(None, "--live/--no-live", help="live replica table (default: on a terminal)"),
    tick: float = typer.Option(1.0, help="autoscaler period, seconds"),
    drain: float = typer.Option(30.0, help="seconds a replica being scaled down may finish its requests"),
) -> None:
    from rich.console import Console

    from kubellm.local.errors import LocalError
    from kubellm.local.model import default_cache_dir
    from kubellm.local.runner import UpOptions, run_up
    from kubellm.spec import SpecError, load_spec

    err = Console(stderr=True)
    try:
        service = load_spec(spec)
    except SpecError as exc:
        err.print(f"[red]error:[/] {spec} is not a valid LLMService:\n{exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    options = UpOptions(host=host, port=port, cache_dir=cache_dir or default_cache_dir(), model_file=model_file,
                        api_keys_file=api_keys_file, live=sys.stdout.isatty() if live is None else live,
                        tick_s=tick, drain_s=drain)
    try:
        asyncio.run(_main(service, options))
    except LocalError as exc:
        err.print(f"[red]error:[/] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None


async def _main(service: object, options: object) -> None:
    from rich.console import Console

    from kubellm.local.runner import UpOptions, run_up
    from kubellm.spec import LLMService

    assert isinstance(service, LLMService) and isinstance(options, UpOptions)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await run_up(service, options, Console(), stop)
