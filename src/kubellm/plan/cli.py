"""Commands of kubellm.plan, registered on the main `kubellm` app."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import typer


def register(app: typer.Typer) -> None:
    """Add this component's commands to *app*."""
    app.command("plan", help="Capacity plan by simulation: replicas, accelerators and scaling settings "
                             "that meet the SLO at least cost on a trace, compared with the field's policies.")(plan)


def plan(
    spec: Path = typer.Argument(..., help="the LLMService YAML"),
    trace: str = typer.Option(..., help="trace file (.csv/.jsonl: at,prompt_tokens,output_tokens[,group]) "
                                        "or a built-in: diurnal, flash-crowd, idle-tail"),
    slo: list[str] = typer.Option([], help="override spec.slo, e.g. --slo ttftP99Ms=1500 --slo tpotMs=60"),
    profile: str | None = typer.Option(None, help="sim cost-model profile (default: from the accelerator)"),
    cache: str = typer.Option("pvc", help="where weights come from on a cold start: pvc, oci, pull"),
    max_replicas: int | None = typer.Option(None, help="upper bound (default: spec.scaling.maxReplicas)"),
    set_: list[str] = typer.Option([], "--set", help="policy parameter, e.g. kpa.panicThreshold=3"),
    no_peers: bool = typer.Option(False, "--no-peers", help="skip the field's policies (faster)"),
    write: Path | None = typer.Option(None, help="write the spec with the recommended scaling and cost blocks here"),
    spot: str | None = typer.Option(None, help="your spot provider (gke, eks, karpenter, aks): also recommend "
                                               "spot nodes with on-demand fallback in spec.cost"),
) -> None:
    from kubellm.plan.command import run_plan

    text, spec_out = run_plan(spec, trace, slo, profile, cache, max_replicas, set_, not no_peers, spot)
    typer.echo(text)
    if write is not None and spec_out is not None:
        _write_atomic(write, spec_out)
        typer.echo(f"wrote {write}")


def _write_atomic(path: Path, data: dict[str, Any]) -> None:
    """Write through a temporary file and rename, so a half-written spec never exists."""
    import yaml

    fd, tmp = tempfile.mkstemp(dir=path.parent or ".", prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as f:
            yaml.safe_dump(data, f, sort_keys=False)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
