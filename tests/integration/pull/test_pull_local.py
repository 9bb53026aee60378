"""Local paths and pvc:// claims, destination rules, and a real full disk (a small tmpfs)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from kubellm.pull import PullOptions, SourceSettings, pull
from kubellm.pull.errors import DiskSpaceError, PullInputError, UnsafeContentError
from kubellm.pull.transfer import _pwrite_all


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 2 MiB tmpfs: a real file system that fills up."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here (needs root); the full-disk tests did not run")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_pvc_claim_is_copied_and_verified(tmp_path: Path) -> None:
    claim = tmp_path / "pvcs" / "model-cache" / "mistral"
    (claim / "sub").mkdir(parents=True)
    (claim / "a.gguf").write_bytes(os.urandom(300_000))
    (claim / "sub" / "b.json").write_text("{}")
    result = pull("pvc://model-cache/mistral", tmp_path / "m", PullOptions(), SourceSettings(pvc_root=tmp_path / "pvcs"))
    assert result.files == 2 and (tmp_path / "m/a.gguf").read_bytes() == (claim / "a.gguf").read_bytes()


def test_symlinks_in_a_local_source_are_refused(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.json").write_text("{}")
    (src / "passwd").symlink_to("/etc/passwd")
    with pytest.raises(UnsafeContentError, match="symlink passwd"):
        pull(str(src), tmp_path / "m", PullOptions(), SourceSettings())


def test_foreign_destination_and_other_source_are_refused(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.json").write_text("{}")
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "mine.txt").write_text("x")
    with pytest.raises(PullInputError, match="not empty and holds no kubellm manifest"):
        pull(str(src), tmp_path / "busy", PullOptions(), SourceSettings())
    pull(str(src), tmp_path / "m", PullOptions(), SourceSettings())
    with pytest.raises(PullInputError, match="holds .*src, not"):
        pull(str(tmp_path / "busy"), tmp_path / "m", PullOptions(), SourceSettings())


def test_not_enough_space_is_refused_before_any_byte_moves(small_disk: Path, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "big.gguf").write_bytes(os.urandom(3 * 1024 * 1024))
    with pytest.raises(DiskSpaceError, match="not enough free space.*cache volume"):
        pull(str(src), small_disk / "m", PullOptions(), SourceSettings())
    assert not (small_disk / "m").exists()


def test_disk_filling_up_mid_write_is_reported(small_disk: Path) -> None:
    fd = os.open(small_disk / "f", os.O_WRONLY | os.O_CREAT)
    try:
        with pytest.raises(DiskSpaceError, match="disk filled up.*resumes"):
            _pwrite_all(fd, os.urandom(3 * 1024 * 1024), 0)
    finally:
        os.close(fd)
