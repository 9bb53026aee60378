"""Commands of kubellm.pull, registered on the main `kubellm` app."""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path
from typing import Annotated, Literal

import typer

from kubellm.pull.clock import SystemClock
from kubellm.pull.errors import PullError
from kubellm.pull.options import MiB, PullOptions, SourceSettings, TransferOptions
from kubellm.pull.progress import JsonLinesProgress, Progress, RichProgress, WarningsOnly
from kubellm.pull.pull import pull


def register(app: typer.Typer) -> None:
    """Add this component's commands to *app*."""
    app.command("pull", help="Download a model into DEST: parallel, resumable, verified, committed atomically.")(pull_command)


def pull_command(
    uri: Annotated[str, typer.Argument(help="hf://org/repo[@rev], s3://, gs://, az://, oci://, https://, pvc://, models:/name/version, or a local path")],
    dest: Annotated[Path, typer.Argument(help="Directory to create; it appears only when complete")],
    streams: Annotated[int, typer.Option(help="Concurrent range requests")] = 16,
    range_mib: Annotated[int, typer.Option("--range-mib", help="Range size in MiB (the unit of resume)")] = 32,
    allow: Annotated[list[str] | None, typer.Option("--allow", help="Only pull files matching this glob (repeatable)")] = None,
    ignore: Annotated[list[str] | None, typer.Option("--ignore", help="Skip files matching this glob (repeatable)")] = None,
    revision: Annotated[str | None, typer.Option(help="Pin a revision (overrides the URI's)")] = None,
    allow_pickle: Annotated[bool, typer.Option("--allow-pickle", help="Permit pickle-based weights (.bin, .pt...)")] = False,
    allow_http: Annotated[bool, typer.Option("--allow-http", help="Permit plain http:// off loopback")] = False,
    verify: Annotated[str, typer.Option(help="On a complete cache: full (re-hash) or size")] = "full",
    stall_timeout: Annotated[float, typer.Option(help="Abort a request with no bytes for this many seconds")] = 60.0,
    retries: Annotated[int, typer.Option(help="Retries per range")] = 5,
    progress: Annotated[str, typer.Option(help="auto (bar on a terminal, JSON lines otherwise), bar, json, none")] = "auto",
    progress_interval: Annotated[float, typer.Option(help="Seconds between JSON progress lines")] = 5.0,
) -> None:
    try:
        options = PullOptions(
            allow_patterns=tuple(allow or ()), ignore_patterns=tuple(ignore or ()), allow_pickle=allow_pickle,
            revision=revision, verify=_verify_mode(verify), allow_http=allow_http,
            transfer=TransferOptions(streams=streams, range_size=range_mib * MiB, stall_timeout_s=stall_timeout, retries=retries),
        )  # fmt: skip
    except ValueError as exc:
        _fail(2, f"bad option: {exc}")
    try:
        settings = SourceSettings.from_env(os.environ)
    except PullError as exc:
        _fail(exc.exit_code, str(exc), type(exc).__name__)
    reporter = _progress(progress, progress_interval)
    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        result = pull(uri, dest, options, settings, progress=reporter, clock=SystemClock())
    except PullError as exc:
        _fail(exc.exit_code, str(exc), type(exc).__name__)
    summary = {"event": "done", "status": result.status, "dest": str(result.dest), "files": result.files,
               "bytes": result.total_bytes, "bytes_received": result.bytes_received, "revision": result.revision}  # fmt: skip
    print(json.dumps(summary))


def _on_sigterm(signum: int, frame: object) -> None:
    """Pod shutdown: stop the streams, record the durable ranges, exit non-zero (not complete)."""
    raise SystemExit(128 + signum)


def _verify_mode(value: str) -> Literal["full", "size"]:
    if value not in ("full", "size"):
        raise ValueError(f"--verify must be full or size, not {value!r}")
    return "full" if value == "full" else "size"


def _progress(mode: str, interval: float) -> Progress:
    if mode == "auto":
        mode = "bar" if sys.stderr.isatty() else "json"
    if mode == "bar":
        return RichProgress()
    if mode == "json":
        return JsonLinesProgress(sys.stderr, SystemClock(), interval)
    return WarningsOnly(sys.stderr)


def _fail(code: int, message: str, kind: str = "PullInputError") -> None:
    print(json.dumps({"event": "error", "error": kind, "message": message}), file=sys.stderr)
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)
