"""Commands of kubellm.gateway, registered on the main `kubellm` app."""

from __future__ import annotations

import logging
from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    """Add this component's commands to *app*."""

    @app.command()
    def gateway(
        config: Path = typer.Option(..., "--config", "-c", help="gateway config YAML (reloaded when it changes)"),
        host: str = typer.Option("127.0.0.1", help="address to listen on"),
        port: int = typer.Option(8080, min=0, max=65535, help="port to listen on"),
        log_level: str = typer.Option("info", help="debug, info, warning or error"),
        workers: int = typer.Option(1, min=1, max=256, help="processes sharing the port (SO_REUSEPORT); "
                                    "as many as the pod's cores for the most throughput"),
        server: str | None = typer.Option(None, envvar="KUBELLM_GATEWAY_SERVER",
                                          help="HTTP server: fast or aiohttp (default: the config's `server`, "
                                          "else fast)"),
    ) -> None:
        """Run the OpenAI-compatible, LLM-aware gateway in front of engines."""
        logging.basicConfig(level=log_level.upper(), format="%(message)s")
        if server not in (None, "aiohttp", "fast"):
            raise typer.BadParameter(f"{server!r}: choose aiohttp or fast", param_hint="--server")
        if workers > 1:
            from kubellm.gateway.config import load_config
            from kubellm.gateway.workers import Supervisor

            drain_s = load_config(config).timeouts.drain_s  # an invalid config stops here, once
            Supervisor(config, host, port, workers, log_level=log_level, drain_s=drain_s, server=server).run()
            return
        from kubellm.gateway.serve import serve

        import uvloop

        # An invalid config (ConfigError, exit 2) or a port in use (exit 2) is reported by the
        # command line's error edge, kubellm.cli.errors.
        uvloop.run(serve(config, host, port, server=server))
