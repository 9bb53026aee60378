"""The sidecar state file in the staging directory: which ranges are safely on disk.

A range is recorded only after its bytes were written (and fdatasync'ed), so after a crash
every recorded range can be trusted and every other one is fetched again.
"""

from __future__ import annotations

import threading
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from kubellm.pull.fsio import write_atomic
from kubellm.pull.source import RemoteFile

STATE_NAME = ".kubellm-pull-state.json"


class FileState(BaseModel):
    model_config = ConfigDict(extra="forbid")
    size: int
    version: str | None
    range_size: int
    done: list[int] = []
    sha256: str | None = None
    """Set once the whole file was hashed and checked."""


class PullState(BaseModel):
    model_config = ConfigDict(extra="forbid")
    source: str
    revision: str | None
    files: dict[str, FileState] = {}


class StateStore:
    """Thread-safe holder of the state, persisted atomically on every change."""

    def __init__(self, path: Path, state: PullState) -> None:
        self._path = path
        self._state = state
        self._lock = threading.Lock()

    @classmethod
    def open(cls, staging: Path, source: str, revision: str | None) -> StateStore:
        """Load the state of a previous attempt at the same source and revision, else start empty."""
        path = staging / STATE_NAME
        state = PullState(source=source, revision=revision)
        if path.is_file():
            try:
                old = PullState.model_validate_json(path.read_bytes())
            except ValidationError:
                old = None
            if old is not None and (old.source, old.revision) == (source, revision):
                state = old
        return cls(path, state)

    def file_state(self, file: RemoteFile, range_size: int) -> FileState:
        """The state of *file*, reset when the remote file changed since the last attempt."""
        with self._lock:
            old = self._state.files.get(file.path)
            if old is None or (old.size, old.version) != (file.size, file.version):
                old = FileState(size=file.size, version=file.version, range_size=range_size)
                self._state.files[file.path] = old
            return old.model_copy(deep=True)

    def mark_ranges_done(self, ranges: list[tuple[str, int]]) -> None:
        with self._lock:
            for path, index in ranges:
                self._state.files[path].done.append(index)
            self._save()

    def mark_file_verified(self, path: str, sha256: str) -> None:
        with self._lock:
            self._state.files[path].sha256 = sha256
            self._save()

    def forget_file(self, path: str) -> None:
        with self._lock:
            self._state.files.pop(path, None)
            self._save()

    def save(self) -> None:
        with self._lock:
            self._save()

    def _save(self) -> None:
        write_atomic(self._path, self._state.model_dump_json().encode())
