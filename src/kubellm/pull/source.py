"""The contract every source driver implements: list files, read byte ranges.

Drivers are synchronous on purpose: the transfer engine runs them on a bounded pool of
threads (the SDKs it wraps, boto3, azure, google-cloud-storage, are synchronous), and
sockets release the GIL while they wait.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol

from kubellm.pull.checksums import StoreChecksum


@dataclass(frozen=True)
class RemoteFile:
    """One file of a model as the source describes it."""

    path: str
    """Relative POSIX path inside the model (checked for traversal before use)."""
    size: int
    sha256: str | None = None
    """Hex sha256 the source vouches for (Hugging Face LFS, OCI digest, S3 checksum)."""
    version: str | None = None
    """Opaque change marker (ETag, blob id): partial downloads are kept only while it matches."""
    locator: str = ""
    """Driver-private address of the bytes (object key, blob digest, URL)."""
    archive: bool = False
    """A tar or zip to be unpacked safely once verified (https sources)."""
    store_checksum: StoreChecksum | None = None
    """A checksum the store keeps and vouches for (S3 full or composite, GCS crc32c, Azure MD5)."""
    store_note: str = ""
    """Why no store checksum is checked, when there is none (recorded in the manifest)."""
    ranged: bool = True
    """The source answers Range requests. Without them the file comes in one stream and a
    pull interrupted mid-file restarts it from zero."""


@dataclass(frozen=True)
class Listing:
    """Everything a source holds for one model reference."""

    files: tuple[RemoteFile, ...]
    revision: str | None = None
    """The immutable revision resolved from the reference (commit sha, digest), if any."""
    notes: tuple[str, ...] = field(default=())


class SourceDriver(Protocol):
    """One URI scheme. Implementations map their library's errors into `errors.PullError`."""

    def list_files(self) -> Listing:
        """Resolve the reference and describe its files."""
        ...

    def read_range(self, file: RemoteFile, start: int, end: int) -> Iterator[bytes | memoryview]:
        """Yield the bytes [start, end) of *file*, in order, in chunks of bounded size.

        A chunk may be a view of a buffer the driver reuses: the engine writes each chunk out
        before it asks for the next one."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...
