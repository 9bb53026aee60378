"""The command line's error edge: every exception a command lets out becomes one message and a
documented exit code (docs/errors.md); --debug adds the traceback; anything unexpected is
reported as a bug with where to report it."""

from __future__ import annotations

import errno
import io
import subprocess
import sys

import httpx
import httpx2
import pytest
import yaml
from lightkube import ConfigError

from kubellm.bench.errors import TargetError, WorkloadError
from kubellm.cli.errors import (
    EXIT_FAILED,
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    REPORT_URL,
    edge,
    explain,
    split_debug,
)
from kubellm.gateway.errors import ConfigError as GatewayConfigError
from kubellm.operator.errors import ClusterUnreachableError, KubeconfigError
from kubellm.pull.errors import DiskSpaceError, PullInputError
from kubellm.sim.errors import SimConfigError
from kubellm.spec.errors import SpecError, SpecIssue


def _yaml_error() -> yaml.YAMLError:
    try:
        yaml.safe_load("a: [")
    except yaml.YAMLError as exc:
        return exc
    raise AssertionError("not reached")


CASES = [
    # (exception, exit code, words the message must contain)
    (KeyboardInterrupt(), EXIT_INTERRUPTED, ["interrupted"]),
    (OSError(errno.EADDRINUSE, "error while attempting to bind on address ('127.0.0.1', 8080): address already in use"),
     EXIT_USAGE, ["('127.0.0.1', 8080)", "address already in use", "--port"]),
    (PermissionError(errno.EACCES, "Permission denied", "/srv/out"), EXIT_FAILED, ["/srv/out", "Permission denied"]),
    (OSError(errno.ENOSPC, "No space left on device", "/mnt/small"), EXIT_FAILED, ["/mnt/small", "disk is full"]),
    (OSError(errno.EROFS, "Read-only file system", "/ro/x"), EXIT_FAILED, ["/ro/x", "read-only"]),
    (FileNotFoundError(errno.ENOENT, "No such file or directory", "svc.yaml"), EXIT_USAGE, ["svc.yaml", "No such file"]),
    (IsADirectoryError(errno.EISDIR, "Is a directory", "specs/"), EXIT_USAGE, ["specs/", "where a file is expected"]),
    (_yaml_error(), EXIT_USAGE, ["not valid YAML"]),
    (httpx.ConnectError("All connection attempts failed", request=httpx.Request("GET", "http://127.0.0.1:9/x")),
     EXIT_FAILED, ["http://127.0.0.1:9/x", "All connection attempts failed"]),
    (httpx2.ConnectError("All connection attempts failed"), EXIT_FAILED, ["cannot reach", "is the server running"]),
    (ConfigError("Configuration file ~/.kube/config not found"), EXIT_FAILED, ["~/.kube/config", "--kubeconfig"]),
    (KubeconfigError("no cluster configured"), EXIT_FAILED, ["no cluster configured"]),
    (ClusterUnreachableError("https://10.0.0.1:6443", "timed out"), EXIT_FAILED, ["https://10.0.0.1:6443", "kubectl cluster-info"]),
    (SpecError([SpecIssue("spec.model.uri", "field required", "add the model to serve")]), EXIT_USAGE, ["spec.model.uri: field required"]),
    (PullInputError("bad URI"), EXIT_USAGE, ["bad URI"]),
    (DiskSpaceError("not enough free space"), EXIT_FAILED, ["not enough free space"]),
    (TargetError("nothing answers at http://127.0.0.1:9"), EXIT_FAILED, ["nothing answers"]),
    (WorkloadError("--rate must be above 0"), EXIT_USAGE, ["--rate"]),
    (GatewayConfigError("invalid gateway config g.yaml"), EXIT_USAGE, ["g.yaml"]),
    (SimConfigError("unknown sim profile 'x'"), EXIT_USAGE, ["unknown sim profile"]),
    (RuntimeError("a bug"), EXIT_INTERNAL, ["internal error: RuntimeError: a bug", REPORT_URL, "--debug"]),
]


@pytest.mark.parametrize(("exc", "code", "words"), CASES, ids=[type(c[0]).__name__ + str(i) for i, c in enumerate(CASES)])
def test_every_exception_gets_its_exit_code_and_a_message_naming_the_cause(exc: BaseException, code: int, words: list[str]) -> None:
    failure = explain(exc)
    assert failure.code == code
    for word in words:
        assert word in failure.message


@pytest.mark.parametrize(("argv", "env", "rest", "debug"), [
    (["status", "x"], {}, ["status", "x"], False),
    (["--debug", "status", "x"], {}, ["status", "x"], True),
    (["status", "x", "--debug"], {}, ["status", "x"], True),
    (["status", "x"], {"KUBELLM_DEBUG": "1"}, ["status", "x"], True),
    (["status", "x"], {"KUBELLM_DEBUG": "0"}, ["status", "x"], False),
    (["sim", "--", "--debug"], {}, ["sim", "--", "--debug"], False),  # after --, an argument
])
def test_debug_is_a_flag_anywhere_before_double_dash_or_the_environment(
    argv: list[str], env: dict[str, str], rest: list[str], debug: bool
) -> None:
    assert split_debug(argv, env) == (rest, debug)


def test_the_edge_prints_one_line_without_debug_and_the_traceback_with_it() -> None:
    for debug in (False, True):
        stream = io.StringIO()
        with pytest.raises(SystemExit) as exited, edge(debug, stream):
            raise FileNotFoundError(errno.ENOENT, "No such file or directory", "svc.yaml")
        assert exited.value.code == EXIT_USAGE
        text = stream.getvalue()
        assert text.endswith("error: svc.yaml: No such file or directory; check the path\n")
        assert ("Traceback (most recent call last)" in text) is debug


def test_the_edge_says_why_a_command_stopped_on_ctrl_c() -> None:
    stream = io.StringIO()
    with pytest.raises(SystemExit) as exited, edge(False, stream):
        raise SystemExit(EXIT_INTERRUPTED)  # what typer makes of a KeyboardInterrupt
    assert exited.value.code == EXIT_INTERRUPTED
    assert stream.getvalue() == "interrupted\n"


def test_an_unexpected_error_in_a_real_process_is_a_short_report_not_a_traceback() -> None:
    code = "from kubellm.cli.errors import edge\nwith edge(False):\n    raise ZeroDivisionError('boom')\n"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == EXIT_INTERNAL
    assert "Traceback" not in done.stderr
    assert "internal error: ZeroDivisionError: boom" in done.stderr and REPORT_URL in done.stderr


def test_ctrl_c_outside_a_command_reads_the_same_as_inside() -> None:
    stream = io.StringIO()
    with pytest.raises(SystemExit) as exited, edge(False, stream):
        raise KeyboardInterrupt  # e.g. while the components are imported
    assert exited.value.code == EXIT_INTERRUPTED
    assert stream.getvalue() == "interrupted\n"
