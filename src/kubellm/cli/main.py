"""The `kubellm` command line: a composition root that only wires components' commands.

Each component owns its commands in ``kubellm/<component>/cli.py`` and exposes
``register(app)``; this module only collects them, so components never edit a shared file.
"""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(
    name="kubellm",
    help="Put large language models into production on Kubernetes.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

_COMPONENTS = (
    "spec",
    "render",
    "operator",
    "pull",
    "sim",
    "gateway",
    "autoscale",
    "bench",
    "local",
)


def _register_components() -> None:
    for component in _COMPONENTS:
        module = importlib.import_module(f"kubellm.{component}.cli")
        module.register(app)


@app.callback()
def _root() -> None:
    """Put large language models into production on Kubernetes."""


@app.command()
def version() -> None:
    """Print kubellm's version."""
    from kubellm import __version__

    typer.echo(__version__)


_register_components()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
