"""The composition root's command table: `kubellm CMD` imports only CMD's component, so the
table must name exactly the commands each component registers."""

from __future__ import annotations

import importlib
import subprocess
import sys

import typer
from typer.main import get_command

from kubellm.cli.main import _COMPONENTS, COMMANDS
from kubellm.cli.summaries import SUMMARIES


def registered(component: str) -> set[str]:
    app = typer.Typer()
    importlib.import_module(f"kubellm.{component}.cli").register(app)
    app.callback()(lambda: None)
    return set(get_command(app).commands)  # type: ignore[attr-defined]


def test_the_table_names_every_command_of_every_component_and_no_other() -> None:
    real = {command: component for component in _COMPONENTS for command in registered(component)}
    assert COMMANDS == real


def test_a_command_imports_its_component_alone() -> None:
    code = ("import sys; sys.argv = ['kubellm', 'pull', '--help']\nfrom kubellm.cli.main import main\ntry: main()\n"
            "except SystemExit: pass\nprint('kubellm.spec.service' in sys.modules)\n"
            "print(sorted(m for m in sys.modules if m.endswith('.cli') and m.count('.') == 2))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "['kubellm.pull.cli']"
    assert out.strip().splitlines()[-2] == "False"  # the spec's models load on first use, and pull uses none
    assert "Download a model into DEST" in out


def first_paragraphs(component: str) -> dict[str, str]:
    app = typer.Typer()
    importlib.import_module(f"kubellm.{component}.cli").register(app)
    app.callback()(lambda: None)
    commands = get_command(app).commands  # type: ignore[attr-defined]
    return {name: (command.help or "").split("\n\n")[0] for name, command in commands.items()}


def test_the_help_summaries_are_each_commands_own_in_the_listed_order() -> None:
    """`kubellm --help` lists SUMMARIES instead of importing every component; typer lists
    commands before groups (bench), so that is the order kept."""
    real: dict[str, str] = {}
    for component in _COMPONENTS:
        real.update(first_paragraphs(component))
    commands_first = sorted(real, key=lambda name: name == "bench")
    assert list(SUMMARIES) == commands_first and SUMMARIES == real


def test_the_top_level_help_imports_no_component() -> None:
    code = ("import sys; sys.argv = ['kubellm', '--help']\nfrom kubellm.cli.main import main\ntry: main()\n"
            "except SystemExit: pass\nprint(sorted(m for m in sys.modules if m.endswith('.cli') and m.count('.') == 2))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"
    assert "Download a model into DEST" in out and "Load-test an OpenAI-compatible endpoint" in out
