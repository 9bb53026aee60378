"""The command line's one error edge: whatever a command raises becomes one message on stderr
and an exit code from the table in docs/errors.md, never a bare traceback.

    with edge(debug):          # around the typer app, in ``main``
        app()

``explain`` is the pure mapping, exception -> ``Failure(code, message)``, in three tiers:

1. kubellm's own error trees (``SpecError``, ``OperatorError``, ``PullError``...): their
   message is already written for the user; only the exit code is chosen here.
2. Library and OS errors that escape a component (lightkube ``ConfigError``, httpx and
   aiohttp connection errors, ``OSError`` by errno: address in use, permission, disk full,
   missing file; YAML; ``KeyboardInterrupt``).
3. Anything else is a bug: a short message and where to report it (exit 70).

``--debug`` (anywhere before ``--``) or ``KUBELLM_DEBUG=1`` also prints the traceback.
Component error classes are looked up in ``sys.modules`` rather than imported, so that
``kubellm pull`` still imports only the pull component (an error of a component that was
never imported cannot have been raised).
"""

from __future__ import annotations

import errno
import sys
import traceback
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TextIO

EXIT_OK = 0
EXIT_FAILED = 1
"""The environment refused or failed: cluster, network, permissions, disk, a failed check."""
EXIT_USAGE = 2
"""What was given cannot be used: option, spec, config or file; a port already in use."""
EXIT_INTERNAL = 70
"""A bug in kubellm (sysexits' EX_SOFTWARE)."""
EXIT_INTERRUPTED = 130
"""SIGINT (128 + 2), as shells report it."""

REPORT_URL = "https://github.com/kubellm/kubellm/issues"
DEBUG_FLAG = "--debug"


@dataclass(frozen=True)
class Failure:
    code: int
    message: str


# (module, class, exit code): kubellm's own trees. Order matters: the first match wins.
_OWN_ERRORS: tuple[tuple[str, str, int], ...] = (
    ("kubellm.spec.errors", "SpecError", EXIT_USAGE),
    ("kubellm.operator.errors", "OperatorError", EXIT_FAILED),
    ("kubellm.render.errors", "RenderError", EXIT_USAGE),
    ("kubellm.gateway.errors", "ConfigError", EXIT_USAGE),
    ("kubellm.gateway.errors", "GatewayError", EXIT_FAILED),
    ("kubellm.sim.errors", "SimConfigError", EXIT_USAGE),
    ("kubellm.plan.errors", "PlanError", EXIT_USAGE),
    ("kubellm.sim.errors", "SimError", EXIT_FAILED),
    ("kubellm.bench.errors", "BenchError", EXIT_USAGE),
    ("kubellm.local.errors", "LocalError", EXIT_FAILED),
    ("kubellm.autoscale.errors", "AutoscaleError", EXIT_USAGE),
    ("kubellm.pull.errors", "PullError", EXIT_FAILED),  # carries its own exit_code (2: bad input)
)

# errno -> (exit code, what to do). Bad input is 2, a refusing environment 1.
_ERRNO_HINTS: dict[int, tuple[int, str]] = {
    errno.EADDRINUSE: (EXIT_USAGE, "another process listens there: pick another --port (0: any free port) "
                                   "or stop that process (`ss -ltnp`)"),
    errno.EADDRNOTAVAIL: (EXIT_USAGE, "that is not an address of this machine: check --host"),
    errno.ENOENT: (EXIT_USAGE, "check the path"),
    errno.EISDIR: (EXIT_USAGE, "a directory was given where a file is expected"),
    errno.ENOTDIR: (EXIT_USAGE, "a file was given (or is on the path) where a directory is expected"),
    errno.EEXIST: (EXIT_USAGE, "something exists there already: remove it or choose another path"),
    errno.EACCES: (EXIT_FAILED, "permission denied: choose a location you can write, or fix its permissions"),
    errno.EPERM: (EXIT_FAILED, "operation not permitted: choose a location you can write, or fix its permissions"),
    errno.EROFS: (EXIT_FAILED, "the file system is read-only: choose another location"),
    errno.ENOSPC: (EXIT_FAILED, "the disk is full: free some space or choose another location"),
    errno.EDQUOT: (EXIT_FAILED, "the disk quota is exhausted: free some space or choose another location"),
    errno.ECONNREFUSED: (EXIT_FAILED, "nothing listens there: is the server running?"),
}


def _own_error(exc: BaseException) -> Failure | None:
    for module_name, class_name, code in _OWN_ERRORS:
        module = sys.modules.get(module_name)
        cls = getattr(module, class_name, None) if module is not None else None
        if isinstance(cls, type) and isinstance(exc, cls):
            return Failure(int(getattr(exc, "exit_code", code)), _text(exc))
    return None


def _text(exc: BaseException) -> str:
    """The user-facing message: ``.message`` where a tree keeps it apart, else ``str``."""
    message = getattr(exc, "message", None)
    return str(message if isinstance(message, str) and message else exc) or type(exc).__name__


def _os_error(exc: OSError) -> Failure:
    code, hint = _ERRNO_HINTS.get(exc.errno or 0, (EXIT_FAILED, ""))
    where = " -> ".join(str(f) for f in (exc.filename, exc.filename2) if f is not None)
    what = exc.strerror or str(exc)
    if exc.errno == errno.EADDRINUSE and not where:
        # uvloop and asyncio name the address only in the text, after an "[Errno 98] " prefix
        what = str(exc).split("] ", 1)[-1]
    text = f"{where}: {what}" if where else what
    return Failure(code, f"{text}; {hint}" if hint else text)


def _connection_error(exc: BaseException) -> Failure | None:
    """httpx (and lightkube's httpx2) and aiohttp failures to connect, by duck type: importing
    them here would slow every command's start."""
    names = {cls.__name__ for cls in type(exc).__mro__}
    module = type(exc).__module__.split(".")[0]
    if module in ("httpx", "httpx2") and names & {"TransportError", "TimeoutException"}:
        try:
            url = f" {exc.request.url}"  # type: ignore[attr-defined]
        except (AttributeError, RuntimeError):  # httpx raises RuntimeError when no request is set
            url = ""
        return Failure(EXIT_FAILED, f"cannot reach{url}: {type(exc).__name__}: {exc}; is the server running?")
    if module == "aiohttp" and "ClientConnectionError" in names:
        return Failure(EXIT_FAILED, f"cannot connect: {exc}; is the server running?")
    if module == "lightkube" and "ConfigError" in names:
        return Failure(EXIT_FAILED, f"kubeconfig: {exc}; give --kubeconfig PATH (or set KUBECONFIG) and --context")
    return None


def _library_error(exc: BaseException) -> Failure | None:
    if isinstance(exc, KeyboardInterrupt):
        return Failure(EXIT_INTERRUPTED, "interrupted")
    connection = _connection_error(exc)
    if connection is not None:
        return connection
    if isinstance(exc, OSError):
        return _os_error(exc)
    if type(exc).__module__.startswith("yaml") and type(exc).__name__.endswith("Error"):
        return Failure(EXIT_USAGE, f"not valid YAML: {exc}")
    if isinstance(exc, UnicodeDecodeError):
        return Failure(EXIT_USAGE, f"not a text file ({exc.reason} at byte {exc.start})")
    return None


def explain(exc: BaseException) -> Failure:
    """What the user reads and the exit code, for any exception a command lets out."""
    known = _own_error(exc) or _library_error(exc)
    if known is not None:
        return known
    from kubellm import __version__

    detail = f"{type(exc).__name__}: {exc}"[:300]
    return Failure(EXIT_INTERNAL, (
        f"internal error: {detail}\nThis is a bug in kubellm {__version__}. Rerun with {DEBUG_FLAG} "
        f"(or KUBELLM_DEBUG=1) for the traceback and report it at {REPORT_URL}"))


def split_debug(argv: Sequence[str], environ: Mapping[str, str]) -> tuple[list[str], bool]:
    """*argv* without ``--debug`` (accepted anywhere before ``--``), and whether debug is on."""
    end = list(argv).index("--") if "--" in argv else len(argv)
    head = [a for a in argv[:end] if a != DEBUG_FLAG]
    debug = len(head) < end or environ.get("KUBELLM_DEBUG", "") not in ("", "0", "false", "no")
    return head + list(argv[end:]), debug


def report(exc: BaseException, debug: bool, stream: TextIO) -> int:
    """Print *exc* the way a user should see it; return the exit code."""
    failure = explain(exc)
    if debug:
        traceback.print_exception(exc, file=stream)
    prefix = "" if failure.code in (EXIT_INTERNAL, EXIT_INTERRUPTED) else "error: "  # they say what they are
    print(f"{prefix}{failure.message}", file=stream, flush=True)
    return failure.code


@contextmanager
def edge(debug: bool, stream: TextIO | None = None) -> Iterator[None]:
    """Turn any exception out of the body into a message and ``SystemExit(code)``."""
    try:
        yield
    except SystemExit as exc:
        # typer turns Ctrl-C into a silent exit 130; say why the command stopped.
        if exc.code == EXIT_INTERRUPTED:
            print("interrupted", file=stream or sys.stderr, flush=True)
        raise
    except BaseException as exc:  # noqa: BLE001 - this is the edge: nothing passes it unexplained
        raise SystemExit(report(exc, debug, stream or sys.stderr)) from None
