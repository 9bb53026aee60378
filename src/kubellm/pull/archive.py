"""Safe unpacking of tar and zip archives (https sources): every member is checked first.

Refused: absolute names, '..', symlinks, hard links, devices, fifos, and names reserved by
kubellm. Nothing is extracted until the whole member list has passed.
"""

from __future__ import annotations

import shutil
import tarfile
import zipfile
from pathlib import Path
from typing import IO

from kubellm.pull.errors import IntegrityError, UnsafeContentError
from kubellm.pull.safety import check_relative_path

ARCHIVE_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.zst", ".tar.xz", ".tar.bz2", ".zip")


def is_archive_name(name: str) -> bool:
    return name.lower().endswith(ARCHIVE_SUFFIXES)


def unpack(archive: Path, into: Path) -> list[str]:
    """Extract *archive* into *into*; return the relative paths of the files it held."""
    try:
        if zipfile.is_zipfile(archive):
            return _unpack_zip(archive, into)
        return _unpack_tar(archive, into)
    except (tarfile.TarError, zipfile.BadZipFile, EOFError) as exc:
        raise IntegrityError(f"cannot read archive {archive.name}: {exc}") from exc


def _unpack_tar(archive: Path, into: Path) -> list[str]:
    with tarfile.open(archive, "r:*") as tar:
        members = tar.getmembers()
        for member in members:
            if not (member.isfile() or member.isdir()):
                raise UnsafeContentError(
                    f"archive {archive.name}: refusing member {member.name!r} (links and devices are not allowed)"
                )
            _checked_name(archive, member.name)
        names: list[str] = []
        for member in members:
            if member.isfile():
                name = _checked_name(archive, member.name)
                source = tar.extractfile(member)
                assert source is not None  # a regular file always has content
                _write_member(source, into / name)
                names.append(name)
        return names


def _unpack_zip(archive: Path, into: Path) -> list[str]:
    with zipfile.ZipFile(archive) as zf:
        infos = zf.infolist()
        for info in infos:
            if (info.external_attr >> 16) & 0o170000 == 0o120000:
                raise UnsafeContentError(f"archive {archive.name}: refusing symlink member {info.filename!r}")
            _checked_name(archive, info.filename.rstrip("/") or info.filename)
        names: list[str] = []
        for info in infos:
            if not info.is_dir():
                name = _checked_name(archive, info.filename)
                with zf.open(info) as source:
                    _write_member(source, into / name)
                names.append(name)
        return names


def _checked_name(archive: Path, name: str) -> str:
    try:
        return check_relative_path(name.removeprefix("./"))
    except UnsafeContentError as exc:
        raise UnsafeContentError(f"archive {archive.name}: {exc.message}", exc.hint) from exc


def _write_member(source: IO[bytes], target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("wb") as out:
        shutil.copyfileobj(source, out, 1024 * 1024)
