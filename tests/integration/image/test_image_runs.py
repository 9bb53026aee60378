"""kubellm runs inside its image as a pod would run it: the image's root filesystem
read-only, user 65532, an empty /tmp, only the image's environment.

No container runtime runs on the test machine, so the image's layer is unpacked and run
under ``unshare --mount`` + ``chroot``: the same files, user, environment and read-only
root as a container, without the runtime's namespaces and cgroups (the real node of
tests/integration/realnode runs it under containerd)."""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import sys
import tarfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import ROOT, OciArchive, free_port

pytestmark = pytest.mark.timeout(1800)

# Mount the root read-only and a fresh /tmp, as a pod with readOnlyRootFilesystem and a
# /tmp emptyDir has them, then become the image's user with only the image's environment.
_ENTER = """
set -e
root=$0
mount --bind "$root" "$root"
mount -o remount,bind,ro "$root"
mount -t tmpfs -o size=256m,mode=1777 tmpfs "$root/tmp"
mount -t proc proc "$root/proc"
for file in $KUBELLM_TEST_FILES; do cp "$file" "$root/tmp/"; done
exec chroot --userspec="$KUBELLM_TEST_USER" "$root" /usr/bin/env -i $KUBELLM_TEST_ENV "$@"
"""


@pytest.fixture(scope="session")
def rootfs(kubellm_image: OciArchive, kubellm_layer: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    assert os.geteuid() == 0, "running the image's root filesystem needs root (mount, chroot), as scripts/test.sh runs in CI"
    root = tmp_path_factory.mktemp("kubellm-rootfs")
    with tarfile.open(kubellm_layer, "r:gz") as tar:
        tar.extractall(root, filter="fully_trusted")  # the image's own owners and modes
    yield root
    shutil.rmtree(root, ignore_errors=True)


def in_image(root: Path, image: OciArchive, *argv: str, files: tuple[Path, ...] = ()) -> tuple[list[str], dict[str, str]]:
    """The command line and environment that run *argv* in the image's root filesystem."""
    config = image.config()["config"]
    env = {"KUBELLM_TEST_USER": config["User"], "KUBELLM_TEST_ENV": " ".join(config["Env"]),
           "KUBELLM_TEST_FILES": " ".join(str(f) for f in files), "PATH": os.environ["PATH"]}
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c", _ENTER, str(root), *argv], env


def run(root: Path, image: OciArchive, *argv: str, files: tuple[Path, ...] = ()) -> subprocess.CompletedProcess[str]:
    command, env = in_image(root, image, *argv, files=files)
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)


def cpu_seconds(command: list[str], env: dict[str, str] | None = None) -> float:
    """CPU time (user + system) *command* took: less at the mercy of other load on CI's two
    shared cores than wall time."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    assert done.returncode == 0 and "Usage" in done.stdout and done.stderr == "", done.stderr
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def test_kubellm_help_starts_as_fast_as_from_a_warm_virtualenv(rootfs: Path, kubellm_image: OciArchive) -> None:
    """As 65532 on a read-only root: with no bytecode compiled at build time, every start
    would compile every module (several times the CPU); the image must cost no more than the
    test machine's own warm .venv. docs/image.md has the measured times."""
    image = min(cpu_seconds(*in_image(rootfs, kubellm_image, "kubellm", "--help")) for _ in range(3))
    host = min(cpu_seconds([sys.executable, "-m", "kubellm.cli.main", "--help"]) for _ in range(3))
    assert image <= host * 1.3 + 0.2, (image, host)


def test_the_process_is_65532_and_cannot_write_outside_tmp(rootfs: Path, kubellm_image: OciArchive) -> None:
    done = run(rootfs, kubellm_image, "sh", "-c", "id -u; touch /opt/x 2>/dev/null && echo wrote-root; touch /tmp/x && echo wrote-tmp")
    assert done.stdout.split() == ["65532", "wrote-tmp"], done.stderr


def test_every_component_imports_with_only_the_image_s_dependencies(rootfs: Path, kubellm_image: OciArchive) -> None:
    """A module importing a package that is only a test dependency fails here, not in a pod."""
    components = sorted(p.name for p in (ROOT / "src/kubellm").iterdir() if (p / "__init__.py").exists())
    code = "import importlib, sys\nfor c in sys.argv[1:]:\n    importlib.import_module(f'kubellm.{c}')\n    importlib.import_module(f'kubellm.{c}.cli')\nimport matplotlib.pyplot\nprint('ok')"
    done = run(rootfs, kubellm_image, "python", "-c", code, *[c for c in components if (ROOT / f"src/kubellm/{c}/cli.py").exists()])
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr
    assert done.stderr == ""


def test_render_writes_its_output_under_tmp(rootfs: Path, kubellm_image: OciArchive) -> None:
    done = run(rootfs, kubellm_image, "sh", "-c", "kubellm render /tmp/quickstart.yaml -o /tmp/out && ls /tmp/out | wc -l",
               files=(ROOT / "examples/quickstart.yaml",))
    assert done.returncode == 0, done.stderr
    assert int(done.stdout.split()[-1]) >= 5


def test_the_simulator_engine_serves_from_the_image(rootfs: Path, kubellm_image: OciArchive) -> None:
    port = free_port()
    command, env = in_image(rootfs, kubellm_image, "kubellm", "sim", "--host", "127.0.0.1", "--port", str(port), "--model", "tiny-chat")
    engine = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        body = b""
        while time.monotonic() < deadline and not body:
            assert engine.poll() is None, engine.stdout.read() if engine.stdout else ""
            try:
                body = urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=2).read()
            except OSError:
                time.sleep(0.3)
        assert b"tiny-chat" in body
    finally:
        engine.terminate()
        assert engine.wait(timeout=30) == 0
        if engine.stdout:
            engine.stdout.close()
