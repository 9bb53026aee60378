"""The completion manifest: written last, its presence is what marks a model complete."""

from __future__ import annotations

import hashlib
import os
from datetime import datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from kubellm.pull.errors import IntegrityError, PullInputError
from kubellm.pull.fsio import hash_region, write_atomic

MANIFEST_NAME = ".kubellm-manifest.json"


class ManifestEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    path: str
    size: int
    sha256: str


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
