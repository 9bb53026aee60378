"""The completion manifest: written last, its presence is what marks a model complete."""

from __future__ import annotations

import hashlib
import os
from datetime import datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from kubellm.pull.errors import IntegrityError, PullInputError
from kubellm.pull.fsio import hash_region, write_atomic
from kubellm.pull.source import RemoteFile

MANIFEST_NAME = ".kubellm-manifest.json"


class Verification(BaseModel):
    """What was checked for one file, beyond its size: kubellm always computes the sha256;
    it is compared with the source's where the source states one; the store's own checksum
    is compared where the store vouches for what it covers (`pull.checksums`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    sha256: Literal["computed", "matched the source's"]
    store_checksum: Literal["full", "composite", "none"]
    algorithm: str | None = None
    detail: str = ""
    """What the store's checksum covered, or why none was compared."""


class ManifestEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    path: str
    size: int
    sha256: str
    verification: Verification | None = None
    """None in manifests written before kubellm recorded it."""


class Manifest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    version: int = 1
    source: str
    revision: str | None
    files: tuple[ManifestEntry, ...]
    completed_at: datetime

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)


def verification_of(file: RemoteFile, detail_prefix: str = "") -> Verification:
    """The record of what the transfer engine checked for *file* (it refuses a file that
    fails any of these, so a file in a manifest passed them all)."""
    sha256: Literal["computed", "matched the source's"] = "matched the source's" if file.sha256 else "computed"
    check = file.store_checksum
    if check is None:
        return Verification(sha256=sha256, store_checksum="none", detail=detail_prefix + (file.store_note or "the source states no checksum"))
    return Verification(sha256=sha256, store_checksum=check.kind, algorithm=check.algorithm, detail=detail_prefix + check.describe())


def write_manifest(directory: Path, manifest: Manifest) -> None:
    write_atomic(directory / MANIFEST_NAME, manifest.model_dump_json(indent=2).encode())


def read_manifest(directory: Path) -> Manifest | None:
    """The manifest of *directory*, or None when there is none (an incomplete or foreign dir)."""
    path = directory / MANIFEST_NAME
    if not path.is_file():
        return None
    try:
        return Manifest.model_validate_json(path.read_bytes())
    except ValidationError as exc:
        raise PullInputError(f"{path} is not a kubellm manifest: {exc.errors()[0]['msg']}", "remove the directory and pull again") from exc


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb", buffering=0) as handle:
        hash_region([digest], handle.fileno(), 0, os.fstat(handle.fileno()).st_size)
    return digest.hexdigest()


def verify_tree(directory: Path, manifest: Manifest, *, full: bool) -> None:
    """Check every file of *manifest* in *directory* (size, and sha256 when *full*)."""
    for entry in manifest.files:
        path = directory / entry.path
        if not path.is_file() or path.is_symlink():
            raise IntegrityError(f"{entry.path} is missing from the cache at {directory}", "remove the directory and pull again")
        if path.stat().st_size != entry.size:
            raise IntegrityError(f"{entry.path} has {path.stat().st_size} bytes, the manifest says {entry.size}", "remove the directory and pull again")
        if full and sha256_file(path) != entry.sha256:
            raise IntegrityError(f"{entry.path} no longer matches its sha256 in the manifest", "remove the directory and pull again")
