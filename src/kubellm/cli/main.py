"""The `kubellm` command line: a composition root that only wires components' commands.

Each component owns its commands in ``kubellm/<component>/cli.py`` and exposes
``register(app)``; this module only collects them, so components never edit a shared file.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Sequence

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
    "plan",
)


# The component each top-level command belongs to, so that `kubellm pull ...` imports the pull
# component alone: 0.4 s of imports instead of 1.0 s for all of them, on every loader Job
# start. tests/unit/cli/test_cli_commands.py checks this table against what the components
# register; any other argument (--help, a typo) registers every component.
COMMANDS = {
    "validate": "spec", "schema": "spec", "render": "render",
    "operator": "operator", "install": "operator", "apply": "operator", "status": "operator",
    "delete": "operator", "doctor": "operator", "pull": "pull", "sim": "sim", "gateway": "gateway",
    "bench": "bench", "check": "bench", "up": "local", "plan": "plan",
}


def _register_components(argv: Sequence[str]) -> None:
    if not argv or argv[0] in ("--help", "-h"):
        _register_summaries()  # the command list only: no component needs importing
        return
    wanted = COMMANDS.get(argv[0])  # a typo registers all, for click's "no such command"
    for component in _COMPONENTS if wanted is None else (wanted,):
        module = importlib.import_module(f"kubellm.{component}.cli")
        module.register(app)


def _register_summaries() -> None:
    from kubellm.cli.summaries import SUMMARIES

    for name, summary in SUMMARIES.items():
        app.command(name=name, help=summary)(_listed_only)


def _listed_only() -> None:
    """Never run: `kubellm NAME` registers NAME's real command instead."""


@app.callback(epilog="--debug (anywhere) or KUBELLM_DEBUG=1: show the traceback of an error. "
                     "Exit codes and messages: docs/errors.md.")
def _root() -> None:
    """Put large language models into production on Kubernetes."""


@app.command()
def version() -> None:
    """Print kubellm's version."""
    from kubellm import __version__

    typer.echo(__version__)


def main() -> None:
    from kubellm.cli.errors import edge, split_debug

    argv, debug = split_debug(sys.argv[1:], os.environ)
    with edge(debug):
        _register_components(argv)
        app(args=argv, prog_name="kubellm")


if __name__ == "__main__":
    main()
