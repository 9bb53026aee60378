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
    ) -> None:
        """Run the OpenAI-compatible, LLM-aware gateway in front of engines."""
        from kubellm.gateway.errors import ConfigError
        from kubellm.gateway.serve import serve

        logging.basicConfig(level=log_level.upper(), format="%(message)s")
        import uvloop

        try:
            uvloop.run(serve(config, host, port))
        except ConfigError as exc:
            typer.echo(f"error: {exc.message}", err=True)
            raise typer.Exit(2) from None
