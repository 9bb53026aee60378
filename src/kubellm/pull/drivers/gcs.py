"""gs://bucket/prefix through google-cloud-storage (ADC credentials; STORAGE_EMULATOR_HOST honoured).

Tested against `gcp-storage-emulator` (PyPI), not against Google Cloud itself.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from kubellm.pull.checksums import StoreChecksum
from kubellm.pull.errors import CredentialsError, NotFoundError, PullError, StallError, TransferError
from kubellm.pull.options import SourceSettings, TransferOptions
from kubellm.pull.source import Listing, RemoteFile

CRED_HINT = "mount a service-account key and set GOOGLE_APPLICATION_CREDENTIALS, or use Workload Identity"


class GcsDriver:
    def __init__(self, location: str, settings: SourceSettings, options: TransferOptions) -> None:
        from google.cloud import storage

        self._bucket_name, _, self._prefix = location.partition("/")
        self._chunk = options.chunk_size
        # (connect, read) seconds: a server that sends nothing for the stall timeout is given
        # up on; google's own retries are off so that ours (with backoff) decide.
        self._timeout = (options.connect_timeout_s, options.stall_timeout_s)
        try:
            if settings.gcs_endpoint:
                from google.auth.credentials import AnonymousCredentials

                client = storage.Client(project="kubellm", credentials=AnonymousCredentials())  # type: ignore[no-untyped-call]
            else:
                client = storage.Client()
        except Exception as exc:  # noqa: BLE001 - google.auth's DefaultCredentialsError and kin
            raise CredentialsError(f"gs://{location}: no Google Cloud credentials ({exc})", CRED_HINT) from exc
        self._bucket = client.bucket(self._bucket_name)
        self._listed: dict[str, Any] = {}
        """Blobs as listed, by name: their size is known, so reading never reloads them
        (a reload would run on google's default retry, 120 s, not on our stall timeout)."""

    def list_files(self) -> Listing:
        where = f"gs://{self._bucket_name}/{self._prefix}"
        prefix = self._prefix
        try:
            blobs = list(self._bucket.list_blobs(prefix=prefix, timeout=self._timeout))
            self._listed = {b.name: b for b in blobs}
            exact = [b for b in blobs if b.name == prefix]
            files: tuple[RemoteFile, ...]
            if exact:
                files = (_describe(exact[0], prefix.rsplit("/", 1)[-1]),)
            else:
                base = prefix if not prefix or prefix.endswith("/") else prefix + "/"
                files = tuple(
                    _describe(b, b.name[len(base) :])
                    for b in blobs if b.name.startswith(base) and not b.name.endswith("/")
                )  # fmt: skip
        except Exception as exc:  # noqa: BLE001 - mapped below
            raise _map(exc, where) from exc
        if not files:
            raise NotFoundError(f"{where}: no objects under this prefix", "check the bucket and prefix")
        return Listing(files)

    def read_range(self, file: RemoteFile, start: int, end: int) -> Iterator[bytes]:
        blob: Any = self._listed.get(file.locator) or self._bucket.blob(file.locator, generation=int(file.version or 0) or None)
        try:
            with blob.open("rb", chunk_size=max(self._chunk, 256 * 1024), timeout=self._timeout, retry=None) as reader:
                reader.seek(start)
                left = end - start
                while left > 0 and (block := reader.read(min(self._chunk, left))):
                    left -= len(block)
                    yield block
        except Exception as exc:  # noqa: BLE001 - mapped below
            raise _map(exc, f"gs://{self._bucket_name}/{file.locator}") from exc

    def close(self) -> None:
        pass


def _describe(blob: Any, name: str) -> RemoteFile:
    """Every GCS object has a crc32c of its whole bytes, composite objects too (their md5 is
    absent, so the crc32c is the one checksum every object has): checked after the pull."""
    if not getattr(blob, "crc32c", None):
        return RemoteFile(name, int(blob.size), None, str(blob.generation), blob.name, store_note="the store gave no crc32c")
    check = StoreChecksum.from_base64("crc32c", blob.crc32c)
    return RemoteFile(name, int(blob.size), None, str(blob.generation), blob.name, store_checksum=check)


def _timed_out(exc: BaseException | None) -> bool:
    """A read timeout anywhere in the chain (google-api-core wraps requests' exceptions)."""
    import requests

    while exc is not None:
        if isinstance(exc, (requests.exceptions.Timeout, TimeoutError)):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def _map(exc: Exception, where: str) -> PullError:
    from google.api_core import exceptions as gexc

    if isinstance(exc, PullError):
        return exc
    if isinstance(exc, gexc.NotFound):
        return NotFoundError(f"{where}: not found", "check the bucket and object names")
    if isinstance(exc, (gexc.Forbidden, gexc.Unauthorized)):
        return CredentialsError(f"{where}: access denied", CRED_HINT)
    if _timed_out(exc):
        return StallError(f"{where}: stalled, no bytes for the stall timeout")
    return TransferError(f"{where}: {exc.__class__.__name__}: {exc}")
