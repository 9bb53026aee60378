"""Commands of kubellm.render: `kubellm render`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from kubellm.render.errors import RenderError
from kubellm.render.output import to_stream, write_directory
from kubellm.render.render import DEFAULT_TARGET, render
from kubellm.spec import SpecError, load_spec
from kubellm.spec.cli import EXIT_INVALID, report_spec_error


def render_command(
    spec: Annotated[Path, typer.Argument(help="LLMService YAML file.")],
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Write one file per object into this directory.")] = None,
    target_version: Annotated[str, typer.Option(help="Kubernetes version to render for.")] = DEFAULT_TARGET,
) -> None:
    """Render an LLMService into Kubernetes objects (YAML to stdout, or files with -o)."""
    try:
        objects = render(load_spec(spec), target_version)
    except SpecError as exc:
        report_spec_error(spec, exc)
        raise typer.Exit(EXIT_INVALID) from exc
    except RenderError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(EXIT_INVALID) from exc
    if output is None:
        typer.echo(to_stream(objects), nl=False)
        return
    paths = write_directory(objects, output)
    typer.echo(f"wrote {len(paths)} objects to {output}", err=True)


def register(app: typer.Typer) -> None:
    """Add this component's commands to *app*."""
    app.command("render")(render_command)
