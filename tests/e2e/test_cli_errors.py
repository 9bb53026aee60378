"""Every command, typed as a user types it, through its failure modes: the exit code that
docs/errors.md states, no traceback, and a message naming the cause.

Real parts only: the test control plane (kube-apiserver built from source) answers 401 (a
token it never issued) and 403 (a ServiceAccount with no RBAC binding); a real simulator
serves the model; real sockets hold ports; a tmpfs mounted read-only, or 8 KiB small, in a
private mount namespace (``unshare``) is the unwritable directory and the full disk.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from kubellm.operator.testing import ControlPlane, ControlPlaneError, find_binaries
from kubellm.operator.testing.controlplane import free_port

KUBELLM = [sys.executable, "-m", "kubellm.cli.main"]
CLUSTER_COMMANDS: dict[str, tuple[str, ...]] = {
    "install": ("install",),
    "apply": ("apply", "{spec}"),
    "apply-resource": ("apply", "{spec}", "--resource"),
    "status": ("status", "foo"),
    "delete": ("delete", "foo", "--timeout", "5"),
    "doctor": ("doctor",),
    "operator": ("operator",),
}
SPEC = """apiVersion: kubellm.dev/v1alpha1
kind: LLMService
metadata: {name: foo}
spec:
  model: {uri: "sim://tiny-chat"}
  engine: {kind: sim}
"""


@dataclass(frozen=True)
class Row:
    """One command in one failure mode: what it must exit with and say."""

    args: tuple[str, ...]
    code: int
    words: tuple[str, ...]
    kubeconfig: str | None = None
    """A key of the world: the kubeconfig the command runs with (none: no kubeconfig at all)."""
    mount: str | None = None
    """"ro" or "full": run inside a private mount namespace with that tmpfs at {mnt}."""


def _cluster_rows(situation: str, kubeconfig: str | None, code: int, words: tuple[str, ...],
                  commands: tuple[str, ...] = tuple(CLUSTER_COMMANDS)) -> list[tuple[str, Row]]:
    return [(f"{situation}:{name}", Row(CLUSTER_COMMANDS[name], code, words, kubeconfig)) for name in commands]


UNREACHABLE = ("cannot reach the Kubernetes API server at https://127.0.0.1:{closed_port}", "kubectl cluster-info")
CRD_MISSING = ("LLMService (kubellm.dev/v1alpha1) is not served by this cluster", "kubellm install")
BAD_SPECS = {"missing": ("{missing}", "No such file"), "not-yaml": ("{notyaml}", "not valid YAML"),
             "directory": ("{directory}", "Is a directory")}

ROWS: list[tuple[str, Row]] = [
    *_cluster_rows("no-kubeconfig", None, 1, ("no cluster configured", "--kubeconfig", "KUBECONFIG")),
    *_cluster_rows("closed-port", "closed", 1, UNREACHABLE),
    ("unknown-context:status", Row(("status", "foo", "--context", "nope"), 1, ("context 'nope' is not in",), "closed")),
    *_cluster_rows("401", "bogus_token", 1, ("did not accept the credentials", "401 Unauthorized")),
    *_cluster_rows("403", "no_rights", 1, ("403 Forbidden", "kubectl auth can-i"), ("install", "apply", "apply-resource", "status", "delete", "doctor", "operator")),
    ("403-names-the-request:status", Row(("status", "foo"), 1, (
        "refused to get llmservices.kubellm.dev in namespace default for user 'default'",
        "verbs: [get]"), "no_rights")),
    ("403-names-the-request:doctor", Row(("doctor",), 1, ("refused to list nodes cluster-wide",), "no_rights")),
    ("missing-namespace:apply", Row(("apply", "{spec}", "-n", "nope"), 1, ("namespace nope does not exist", "kubectl create namespace nope"), "admin")),
    ("missing-namespace:status", Row(("status", "foo", "-n", "nope"), 1, ("namespace nope does not exist",), "admin")),
    ("missing-namespace:delete", Row(("delete", "foo", "-n", "nope"), 1, ("namespace nope does not exist",), "admin")),
    ("missing-crd:status", Row(("status", "foo"), 1, CRD_MISSING, "admin")),
    ("missing-crd:apply-resource", Row(("apply", "{spec}", "--resource"), 1, CRD_MISSING, "admin")),
    ("missing-crd:delete", Row(("delete", "foo"), 1, ("nothing named foo found in namespace default", "CRD is not installed"), "admin")),
    *[(f"spec-{bad}:{cmd}", Row((cmd, path), 2, (path, word))) for bad, (path, word) in BAD_SPECS.items()
      for cmd in ("validate", "render", "apply", "up")],
    ("spec-missing:doctor", Row(("doctor", "--spec", "{missing}"), 2, ("{missing}", "No such file"))),
    ("usage:unknown-command", Row(("statsu",), 2, ("No such command",))),
    ("port-in-use:gateway", Row(("gateway", "-c", "{gateway_config}", "--port", "{busy_port}"), 2, ("address already in use", "--port"))),
    ("port-in-use:sim", Row(("sim", "--port", "{busy_port}"), 2, ("address already in use",))),
    ("port-in-use:up", Row(("up", "{spec}", "--port", "{busy_port}", "--cache-dir", "{cache}", "--no-live"), 1, ("cannot listen on", "--port"))),
    ("gateway-config-missing", Row(("gateway", "-c", "{missing}", "--port", "0"), 2, ("cannot read gateway config", "No such file"))),
    ("gateway-config-not-yaml", Row(("gateway", "-c", "{notyaml}", "--port", "0"), 2, ("is not valid YAML",))),
    ("gateway-config-directory", Row(("gateway", "-c", "{directory}", "--port", "0"), 2, ("Is a directory",))),
    ("gateway-config-endpoint-not-url", Row(("gateway", "-c", "{gateway_not_url}", "--port", "0"), 2, ("'10.0.0.5:8000' is not an http(s) URL",))),
    ("gateway-kubernetes-discovery-without-cluster", Row(("gateway", "-c", "{gateway_k8s}", "--port", "0"), 2,
                                                         ("kubernetes discovery needs the Kubernetes API", "KUBECONFIG"))),
    ("sim-bad-option", Row(("sim", "--port", "0", "--error-rate", "3"), 2, ("--error-rate",))),
    ("render-output-unwritable", Row(("render", "{spec}", "-o", "{mnt}/out"), 1, ("{mnt}/out", "Read-only file system"), mount="ro")),
    ("render-output-disk-full", Row(("render", "{spec}", "-o", "{mnt}/out"), 1, ("{mnt}/out", "No space left on device"), mount="full")),
    ("render-output-is-a-file", Row(("render", "{spec}", "-o", "{spec}"), 2, ("{spec}", "File exists"))),
    ("pull-dest-unwritable", Row(("pull", "{model_dir}", "{mnt}/model", "--progress", "none"), 1, ("Read-only file system",), mount="ro")),
    ("pull-dest-disk-full", Row(("pull", "{model_dir}", "{mnt}/model", "--progress", "none"), 1, ("not enough free space",), mount="full")),
    ("bench-nothing-listening", Row(("bench", "http://127.0.0.1:{closed_port}", "--model", "m", "--rate", "2", "--out", "{out}"), 1,
                                    ("nothing answers at http://127.0.0.1:{closed_port}", "is the server running"))),
    ("bench-model-not-served", Row(("bench", "{sim_url}", "--model", "other", "--rate", "2", "--out", "{out}"), 1,
                                   ("model 'other' is not served", "it serves: failing"))),
    ("bench-every-request-fails", Row(("bench", "{sim_url}", "--model", "failing", "--rate", "50", "--out", "{out}"), 1,
                                      ("the first 10 requests all failed the same way (http_503", "nothing written"))),
    ("bench-base-url-with-v1", Row(("bench", "{sim_url}/v1", "--model", "failing", "--rate", "2", "--out", "{out}"), 1,
                                   ("has no /v1/models (404)", "without /v1"))),
    ("check-nothing-listening", Row(("check", "http://127.0.0.1:{closed_port}"), 1, ("nothing answers at",))),
]


def _kubeconfig(path: Path, server: str, user: dict[str, object], ca: str | None = None) -> str:
    cluster: dict[str, object] = {"server": server}
    if ca:
        cluster["certificate-authority"] = ca
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "test",
        "clusters": [{"name": "test", "cluster": cluster}],
        "users": [{"name": "someone", "user": user}],
        "contexts": [{"name": "test", "context": {"cluster": "test", "user": "someone"}}],
    }))
    return str(path)


def _can_mount_privately() -> bool:
    unshare = shutil.which("unshare")
    return unshare is not None and subprocess.run([unshare, "-Urm", "true"], capture_output=True).returncode == 0


@pytest.fixture(scope="module")
def plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    """A control plane without the LLMService CRD (nothing is installed)."""
    try:
        binaries = find_binaries()
    except ControlPlaneError as exc:
        pytest.fail(str(exc), pytrace=False)
    with ControlPlane.start(tmp_path_factory.mktemp("plane"), binaries=binaries) as started:
        yield started


@pytest.fixture(scope="module")
def cluster_kubeconfigs(plane: ControlPlane, world: dict[str, str]) -> dict[str, str]:
    """Kubeconfigs of the control plane: a cluster admin, a user with no rights, a bad token."""
    return {
        "kubeconfig:admin": str(plane.kubeconfig),
        "kubeconfig:no_rights": str(plane.service_account_kubeconfig("default", "default")),
        "kubeconfig:bogus_token": _bogus_token(plane, Path(world["home"]).parent / "bogus.kubeconfig"),
    }


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """The files, ports, kubeconfigs and servers the rows name (the control plane's kubeconfigs
    are added by ``cluster_kubeconfigs``, only for the rows that need it)."""
    root = tmp_path_factory.mktemp("world")
    (root / "home").mkdir()
    (root / "spec.yaml").write_text(SPEC)
    (root / "notyaml.yaml").write_text("spec: [unclosed\n")
    (root / "dir.yaml").mkdir()
    (root / "gateway.yaml").write_text("models: [{name: m, endpoints: ['http://127.0.0.1:9']}]\n")
    (root / "gateway-not-url.yaml").write_text("models: [{name: m, endpoints: ['10.0.0.5:8000']}]\n")
    (root / "gateway-k8s.yaml").write_text("kubernetes: {namespace: default}\n")
    (root / "model").mkdir()
    (root / "model" / "config.json").write_text("{}")
    (root / "model" / "model.safetensors").write_bytes(os.urandom(256 * 1024))
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    closed_port = free_port()
    sim_port = free_port()
    sim_log = root / "sim.log"
    with sim_log.open("w") as log:
        sim = subprocess.Popen([*KUBELLM, "sim", "--port", str(sim_port), "--model", "failing", "--error-rate", "1",
                                "--fixed-ttft-ms", "5", "--fixed-tpot-ms", "1"], stdout=log, stderr=log)
    try:
        _wait_for(lambda: "ready:" in sim_log.read_text(), "the simulator to listen")
        yield {
            "spec": str(root / "spec.yaml"), "notyaml": str(root / "notyaml.yaml"), "directory": str(root / "dir.yaml"),
            "missing": str(root / "absent.yaml"), "gateway_config": str(root / "gateway.yaml"),
            "gateway_not_url": str(root / "gateway-not-url.yaml"), "gateway_k8s": str(root / "gateway-k8s.yaml"), "model_dir": str(root / "model"),
            "busy_port": str(busy.getsockname()[1]), "closed_port": str(closed_port), "cache": str(root / "cache"),
            "sim_url": f"http://127.0.0.1:{sim_port}", "out": str(root / "bench-out"), "home": str(root / "home"),
            "mnt": str(root / "mnt"),
            "kubeconfig:closed": _kubeconfig(root / "closed.kubeconfig", f"https://127.0.0.1:{closed_port}", {"token": "x"}),
        }
    finally:
        sim.terminate()
        sim.wait(timeout=30)
        busy.close()


def _wait_for(check: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def _bogus_token(plane: ControlPlane, path: Path) -> str:
    """The ServiceAccount kubeconfig's shape with a token the API server never issued: 401."""
    config = yaml.safe_load(plane.service_account_kubeconfig("default", "default").read_text())
    config["users"][0]["user"]["token"] = "not-a-token-this-server-issued"
    path.write_text(yaml.safe_dump(config))
    return str(path)


def _command(row: Row, world: dict[str, str]) -> list[str]:
    args = [*KUBELLM, *(arg.format(**world) for arg in row.args)]
    if row.mount is None:
        return args
    if not _can_mount_privately():
        pytest.skip("cannot make a private mount namespace here (unshare -Urm): no tmpfs to fill or make read-only")
    Path(world["mnt"]).mkdir(exist_ok=True)
    options = "ro" if row.mount == "ro" else "size=8k"  # smaller than any output
    script = f'mount -t tmpfs -o {options} tmpfs "$0" && exec "$@"'
    return ["unshare", "-Urm", "sh", "-c", script, world["mnt"], *args]


def _environment(row: Row, world: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("KUBECONFIG", "KUBELLM_DEBUG")}
    env["HOME"] = world["home"]  # no ~/.kube/config
    if row.kubeconfig is not None:
        env["KUBECONFIG"] = world[f"kubeconfig:{row.kubeconfig}"]
    return env


CLUSTER_USERS = ("admin", "no_rights", "bogus_token")


@pytest.mark.parametrize("row", [
    pytest.param(row, id=name, marks=[pytest.mark.controlplane] if row.kubeconfig in CLUSTER_USERS else [])
    for name, row in ROWS
])
def test_every_command_fails_with_the_documented_code_and_a_message_naming_the_cause(
    row: Row, world: dict[str, str], request: pytest.FixtureRequest
) -> None:
    if row.kubeconfig in CLUSTER_USERS:
        world = {**world, **request.getfixturevalue("cluster_kubeconfigs")}
    done = subprocess.run(_command(row, world), env=_environment(row, world), capture_output=True, text=True, timeout=90)
    stderr = done.stderr
    assert "Traceback" not in stderr and "Unclosed" not in stderr, stderr
    assert done.returncode == row.code, stderr
    for word in row.words:
        assert word.format(**world) in stderr, stderr
    assert not Path(world["out"]).exists(), "bench wrote a report of nothing"


def test_debug_shows_the_traceback_behind_the_message(world: dict[str, str]) -> None:
    row = Row(("--debug", "status", "foo"), 1, ())
    done = subprocess.run(_command(row, world), env=_environment(row, world), capture_output=True, text=True, timeout=90)
    assert done.returncode == 1
    assert "Traceback (most recent call last)" in done.stderr and "KubeconfigError" in done.stderr
    assert done.stderr.rstrip().splitlines()[-1].startswith("error: no cluster configured")


def _interrupt(args: list[str], env: dict[str, str], after_s: float) -> subprocess.CompletedProcess[str]:
    proc = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(after_s)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    return subprocess.CompletedProcess(args, proc.returncode, out, err)


def test_ctrl_c_mid_request_exits_130_saying_so(world: dict[str, str], tmp_path: Path) -> None:
    """An API server that accepts the connection and never answers (a bare listening socket):
    Ctrl-C while `kubellm status` waits on it."""
    with socket.socket() as hung:
        hung.bind(("127.0.0.1", 0))
        hung.listen()
        config = _kubeconfig(tmp_path / "hung.kubeconfig", f"https://127.0.0.1:{hung.getsockname()[1]}", {"token": "x"})
        done = _interrupt([*KUBELLM, "status", "foo"], {**_environment(Row((), 0, ()), world), "KUBECONFIG": config}, 3.0)
    assert done.returncode == 130, done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1] == "interrupted"


def test_ctrl_c_stops_a_server_cleanly_with_exit_0(world: dict[str, str]) -> None:
    done = _interrupt([*KUBELLM, "sim", "--port", "0"], _environment(Row((), 0, ()), world), 3.0)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.controlplane
def test_with_the_crd_installed_a_missing_service_is_named_with_its_namespace(
    world: dict[str, str], cluster_kubeconfigs: dict[str, str]
) -> None:
    """Last in this file: it installs the CRD that the missing-crd rows need absent."""
    env = {**_environment(Row((), 0, ()), world), "KUBECONFIG": cluster_kubeconfigs["kubeconfig:admin"]}
    installed = subprocess.run([*KUBELLM, "install", "--crd-only"], env=env, capture_output=True, text=True, timeout=90)
    assert installed.returncode == 0, installed.stderr
    for command in (["status", "foo"], ["delete", "foo"]):
        done = subprocess.run([*KUBELLM, *command], env=env, capture_output=True, text=True, timeout=90)
        assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
        assert "LLMService foo not found in namespace default" in done.stderr, done.stderr


@pytest.mark.controlplane
def test_a_wait_that_times_out_names_what_it_awaited(
    world: dict[str, str], cluster_kubeconfigs: dict[str, str], plane: ControlPlane
) -> None:
    """No operator runs, and a finalizer of the test's own holds the LLMService: `delete`
    waits for it in vain. (After the test above: the CRD is installed.)"""
    env = {**_environment(Row((), 0, ()), world), "KUBECONFIG": cluster_kubeconfigs["kubeconfig:admin"]}
    applied = subprocess.run([*KUBELLM, "apply", world["spec"], "--resource"], env=env, capture_output=True, text=True, timeout=90)
    assert applied.returncode == 0, applied.stderr
    path = "/apis/kubellm.dev/v1alpha1/namespaces/default/llmservices/foo"
    hold = {"metadata": {"finalizers": ["test.kubellm.dev/hold"]}}
    with plane.http() as client:
        client.patch(path, json=hold, headers={"Content-Type": "application/merge-patch+json"}).raise_for_status()
        try:
            done = subprocess.run([*KUBELLM, "delete", "foo", "--timeout", "2"], env=env, capture_output=True, text=True, timeout=90)
        finally:
            release = {"metadata": {"finalizers": None}}
            client.patch(path, json=release, headers={"Content-Type": "application/merge-patch+json"}).raise_for_status()
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    assert "timed out after 2s waiting for the objects of default/foo to be deleted" in done.stderr, done.stderr
    assert "is the operator running?" in done.stderr
