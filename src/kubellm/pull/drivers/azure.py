"""az://container/prefix (Azure Blob Storage; the account comes from the environment).

A blob's Content-MD5 is the MD5 of its whole content (the service computes it for a single
Put Blob; for a blob committed from blocks it is what the uploader set, since per-block MD5s
are only checked in transit and never stored): compared when present.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from kubellm.pull.checksums import StoreChecksum
from kubellm.pull.errors import CredentialsError, NotFoundError, PullError, StallError, TransferError
from kubellm.pull.options import SourceSettings, TransferOptions
from kubellm.pull.source import Listing, RemoteFile

CRED_HINT = "set AZURE_STORAGE_CONNECTION_STRING, or AZURE_STORAGE_ACCOUNT and AZURE_STORAGE_KEY (from a Secret)"


class AzureDriver:
    def __init__(self, location: str, settings: SourceSettings, options: TransferOptions) -> None:
        from azure.storage.blob import BlobServiceClient

        self._container, _, self._prefix = location.partition("/")
        kwargs = client_kwargs(options)
        if settings.azure_connection_string:
            service = BlobServiceClient.from_connection_string(settings.azure_connection_string, **kwargs)
        elif settings.azure_account_url and settings.azure_account_key:
            account = settings.azure_account_url.split("//", 1)[-1].split(".", 1)[0]
            credential = {"account_name": account, "account_key": settings.azure_account_key}
            service = BlobServiceClient(settings.azure_account_url, credential=credential, **kwargs)
        else:
            raise CredentialsError(f"az://{location}: no Azure storage credentials", CRED_HINT)
        self._client = service.get_container_client(self._container)

    def list_files(self) -> Listing:
        where = f"az://{self._container}/{self._prefix}"
        try:
            files = tuple(self._blobs())
        except Exception as exc:  # noqa: BLE001 - azure errors are mapped here, nothing else escapes
            raise _map(exc, where) from exc
        if not files:
            raise NotFoundError(f"{where}: no blobs under this prefix", "check the container and prefix")
        return Listing(files)

    def _blobs(self) -> Iterator[RemoteFile]:
        prefix = self._prefix
        if prefix and not prefix.endswith("/"):
            exact = [b for b in self._client.list_blobs(name_starts_with=prefix) if b.name == prefix]
            if exact:
                yield _describe(exact[0], prefix.rsplit("/", 1)[-1])
                return
            prefix += "/"
        for blob in self._client.list_blobs(name_starts_with=prefix):
            yield _describe(blob, blob.name[len(prefix) :])

    def read_range(self, file: RemoteFile, start: int, end: int) -> Iterator[bytes]:
        try:
            stream = self._client.download_blob(
                file.locator, offset=start, length=end - start, etag=file.version, match_condition=_if_match()
            )
            yield from stream.chunks()
        except Exception as exc:  # noqa: BLE001 - mapped to the pull tree
            raise _map(exc, f"az://{self._container}/{file.locator}") from exc

    def close(self) -> None:
        self._client.close()


def _describe(blob: Any, name: str) -> RemoteFile:
    md5 = blob.content_settings.content_md5 if blob.content_settings else None
    if not md5:
        note = "the blob has no Content-MD5 (block uploads carry one only when the uploader sets it)"
        return RemoteFile(name, int(blob.size), None, blob.etag, blob.name, store_note=note)
    try:
        check = StoreChecksum("md5", bytes(md5))
    except ValueError as exc:
        return RemoteFile(name, int(blob.size), None, blob.etag, blob.name, store_note=f"the blob's Content-MD5 is malformed ({exc})")
    return RemoteFile(name, int(blob.size), None, blob.etag, blob.name, store_checksum=check)


def client_kwargs(options: TransferOptions) -> dict[str, Any]:
    """BlobServiceClient settings. Both get sizes are the chunk size: a download first fetches
    max_single_get_size bytes (32 MiB by default) in one buffered read, then chunks of
    max_chunk_get_size, so this keeps each stream's buffer at chunk_size."""
    return {
        "connection_timeout": options.connect_timeout_s, "read_timeout": options.stall_timeout_s,
        "retry_total": 0, "max_single_get_size": options.chunk_size, "max_chunk_get_size": options.chunk_size,
    }  # fmt: skip


def _if_match() -> Any:
    from azure.core import MatchConditions

    return MatchConditions.IfNotModified


def _map(exc: Exception, where: str) -> PullError:
    from azure.core.exceptions import (
        ClientAuthenticationError, HttpResponseError, ResourceModifiedError, ResourceNotFoundError,
        ServiceRequestError, ServiceResponseError,
    )  # fmt: skip

    if isinstance(exc, PullError):
        return exc
    if isinstance(exc, ResourceNotFoundError):
        return NotFoundError(f"{where}: not found", "check the container and blob names")
    if isinstance(exc, ClientAuthenticationError):
        return CredentialsError(f"{where}: access denied", CRED_HINT)
    if isinstance(exc, ResourceModifiedError):
        return TransferError(f"{where}: the blob changed during the pull; run it again")
    if isinstance(exc, ServiceResponseError) and "timed out" in str(exc).lower():
        return StallError(f"{where}: stalled, no bytes for the stall timeout")
    if isinstance(exc, (ServiceRequestError, ServiceResponseError, HttpResponseError)):
        return TransferError(f"{where}: {exc}")
    return TransferError(f"{where}: {exc.__class__.__name__}: {exc}")
