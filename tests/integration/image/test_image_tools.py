"""A missing build tool stops the image build at once, naming the Debian package to install."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from .conftest import ROOT

SCRIPT_NEEDS = ("bash", "dirname", "id", "sed", "git", "python3", "cat")


def path_without(tmp_path: Path, missing: str, needs: tuple[str, ...]) -> str:
    """A PATH of links to *needs* only (the commands the script runs before its checks)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in needs:
        if tool != missing:
            found = shutil.which(tool)
            assert found, tool
            (bin_dir / tool).symlink_to(found)
    return str(bin_dir)


@pytest.mark.parametrize(("tool", "package"), [("mmdebstrap", "mmdebstrap"), ("umoci", "umoci"), ("flock", "util-linux")])
def test_build_names_the_package_of_a_missing_tool(tmp_path: Path, tool: str, package: str) -> None:
    present = ("mmdebstrap", "umoci", "chroot", "flock")
    path = path_without(tmp_path, tool, SCRIPT_NEEDS + present)
    done = subprocess.run([str(ROOT / "scripts/image/build.sh"), "kubellm"], env={**os.environ, "PATH": path},
                          capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert f"'{tool}' not found: install the Debian package '{package}'" in done.stderr


def test_push_names_skopeo_when_it_is_missing(tmp_path: Path) -> None:
    archive = tmp_path / "image.oci.tar"
    archive.write_bytes(b"not empty")
    path = path_without(tmp_path, "skopeo", SCRIPT_NEEDS)
    done = subprocess.run([str(ROOT / "scripts/image/push.sh"), str(archive), "127.0.0.1:1/kubellm:0.1.0"],
                          env={**os.environ, "PATH": path}, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert "'skopeo' not found: install the Debian package 'skopeo'" in done.stderr


def test_push_refuses_an_archive_that_is_not_there(tmp_path: Path) -> None:
    done = subprocess.run([str(ROOT / "scripts/image/push.sh"), str(tmp_path / "none.oci.tar"), "127.0.0.1:1/kubellm:0.1.0"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert "no image archive at" in done.stderr and "scripts/image/build.sh" in done.stderr
