"""Commands of kubellm.spec: `kubellm validate` and `kubellm schema`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
import yaml

from kubellm.spec.advice import advise
from kubellm.spec.checks import check_target, parse_version
from kubellm.spec.errors import SpecError
from kubellm.spec.load import load_spec
from kubellm.spec.schema import crd, json_schema

EXIT_INVALID = 2
DEFAULT_TARGET = "1.31"


def report_spec_error(path: Path, error: SpecError) -> None:
    """Print every issue of *error* to stderr, one path + message + hint each."""
    typer.echo(f"{path}: invalid LLMService ({len(error.issues)} problem(s))", err=True)
    for issue in error.issues:
        typer.echo("  " + issue.render().replace("\n", "\n  "), err=True)


def validate(
    spec: Annotated[Path, typer.Argument(help="LLMService YAML file.")],
    target_version: Annotated[str, typer.Option(help="Kubernetes version the spec will run on.")] = DEFAULT_TARGET,
) -> None:
    """Check an LLMService spec; on error print each field path with a fix hint, exit 2."""
    try:
        parse_version(target_version)
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(EXIT_INVALID) from exc
    try:
        service = load_spec(spec)
        issues = check_target(service.spec, target_version)
        if issues:
            raise SpecError(issues)
    except SpecError as exc:
        report_spec_error(spec, exc)
        raise typer.Exit(EXIT_INVALID) from exc
    for warning in advise(service.spec):
        typer.echo("warning: " + warning.render().replace("\n", "\n  "), err=True)
    typer.echo(f"{spec}: valid LLMService {service.name!r} (target Kubernetes {target_version})")


def schema(
    crd_output: Annotated[bool, typer.Option("--crd", help="Print the CustomResourceDefinition (YAML).")] = False,
) -> None:
    """Print the JSON Schema of the LLMService spec, or its CRD with --crd."""
    if crd_output:
        typer.echo(yaml.safe_dump(crd(), sort_keys=True), nl=False)
    else:
        typer.echo(json.dumps(json_schema(), indent=2, sort_keys=True))


def register(app: typer.Typer) -> None:
    """Add this component's commands to *app*."""
    app.command("validate")(validate)
    app.command("schema")(schema)
