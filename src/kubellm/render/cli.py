"""Commands of kubellm.render, registered on the main `kubellm` app."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this component's commands to *app*."""
