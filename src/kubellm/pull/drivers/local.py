"""Local paths and pvc:// claims (mounted under the settings' pvc_root): copy and verify.

Symlinks are refused: a link inside a model directory could point anywhere on the node.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from kubellm.pull.errors import NotFoundError, UnsafeContentError
from kubellm.pull.options import TransferOptions
from kubellm.pull.source import Listing, RemoteFile


class LocalDriver:
    def __init__(self, root: Path, options: TransferOptions) -> None:
        self._root = root
        self._chunk = options.chunk_size

    def list_files(self) -> Listing:
        if self._root.is_symlink():
            raise UnsafeContentError(f"{self._root} is a symlink", "point the URI at the real directory")
        if self._root.is_file():
            return Listing((self._describe(self._root, self._root.name),))
        if not self._root.is_dir():
            raise NotFoundError(f"local source {self._root} does not exist", "check the path (pvc:// claims are mounted under KUBELLM_PVC_ROOT)")
        return Listing(tuple(self._walk()))

    def _walk(self) -> Iterator[RemoteFile]:
        for dirpath, dirnames, filenames in os.walk(self._root):
            base = Path(dirpath)
            for name in dirnames + filenames:
                if (base / name).is_symlink():
                    rel = (base / name).relative_to(self._root).as_posix()
                    raise UnsafeContentError(f"refusing symlink {rel} in {self._root}", "replace links with the files they point to")
            for name in filenames:
                path = base / name
                yield self._describe(path, path.relative_to(self._root).as_posix())

    @staticmethod
    def _describe(path: Path, rel: str) -> RemoteFile:
        stat = path.stat()
        return RemoteFile(rel, stat.st_size, version=f"{stat.st_mtime_ns}", locator=str(path))

    def read_range(self, file: RemoteFile, start: int, end: int) -> Iterator[bytes]:
        with open(file.locator, "rb", buffering=0) as handle:
            handle.seek(start)
            left = end - start
            while left > 0:
                block = handle.read(min(self._chunk, left))
                if not block:
                    return
                left -= len(block)
                yield block

    def close(self) -> None:
        pass
