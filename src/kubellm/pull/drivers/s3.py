"""s3://bucket/prefix (AWS or any S3-compatible store: custom endpoint and CA bundle via settings).

Reads each range with GetObject + If-Match on the listed ETag, so an object replaced during
the pull fails loudly instead of mixing versions. A full-object SHA-256 checksum, when the
object was uploaded with one, is checked.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError, ClientError, ConnectionClosedError, EndpointConnectionError, NoCredentialsError,
    PartialCredentialsError, ReadTimeoutError, ResponseStreamingError,
)  # fmt: skip

from kubellm.pull.checksums import Crc
from kubellm.pull.drivers.rawhttp import RangeReader
from kubellm.pull.errors import CredentialsError, IntegrityError, NotFoundError, PullError, SourceError, StallError, TransferError
from kubellm.pull.options import SourceSettings, TransferOptions
from kubellm.pull.source import Listing, RemoteFile

CRED_HINT = (
    "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (in the cluster: a Secret named in "
    "spec.model.credentials), or run with an IAM role (IRSA / pod identity)"
)
_NOT_FOUND = {"NoSuchBucket", "NoSuchKey", "404", "NotFound"}
_DENIED = {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "403", "ExpiredToken", "InvalidToken"}


class S3Driver:
    def __init__(self, location: str, settings: SourceSettings, options: TransferOptions) -> None:
        self._bucket, _, self._prefix = location.partition("/")
        self._chunk = options.chunk_size
        config = Config(
            max_pool_connections=options.streams + 4,
            connect_timeout=options.connect_timeout_s,
            read_timeout=options.stall_timeout_s,
            retries={"max_attempts": 1, "mode": "standard"},  # the engine retries, with its own backoff
            response_checksum_validation="when_required",
        )
        verify = str(settings.ca_bundle) if settings.ca_bundle else None
        keys: dict[str, str] = {}
        if settings.aws_access_key_id and settings.aws_secret_access_key:
            keys = {"aws_access_key_id": settings.aws_access_key_id, "aws_secret_access_key": settings.aws_secret_access_key}
            if settings.aws_session_token:
                keys["aws_session_token"] = settings.aws_session_token
        session = boto3.session.Session(**keys)  # no keys: boto3's own chain (shared file, IAM role)
        self._s3 = session.client("s3", endpoint_url=settings.s3_endpoint_url, verify=verify, config=config)
        self._reader = RangeReader(options.chunk_size, options.stall_timeout_s, verify)

    def list_files(self) -> Listing:
        where = f"s3://{self._bucket}/{self._prefix}"
        try:
            objects = self._objects()
            files = tuple(self._describe(o) for o in objects)
        except (ClientError, BotoCoreError) as exc:
            raise _map(exc, where) from exc
        if not files:
            raise NotFoundError(f"{where}: no objects under this prefix", "check the bucket and prefix")
        return Listing(files)

    def _objects(self) -> list[tuple[str, dict[str, Any]]]:
        """(relative name, object) pairs: the exact key if it exists, else everything under prefix/."""
        prefix = self._prefix
        if prefix and not prefix.endswith("/"):
            exact = self._list(prefix)
            single = [o for o in exact if o["Key"] == prefix]
            if single:
                return [(prefix.rsplit("/", 1)[-1], single[0])]
            prefix += "/"
        return [(o["Key"][len(prefix) :], o) for o in self._list(prefix) if not o["Key"].endswith("/")]

    def _list(self, prefix: str) -> list[dict[str, Any]]:
        pages = self._s3.get_paginator("list_objects_v2").paginate(Bucket=self._bucket, Prefix=prefix)
        return [o for page in pages for o in page.get("Contents", ())]

    def _describe(self, item: tuple[str, dict[str, Any]]) -> RemoteFile:
        name, obj = item
        head = self._s3.head_object(Bucket=self._bucket, Key=obj["Key"], ChecksumMode="ENABLED")
        return RemoteFile(name, int(obj["Size"]), _full_sha256(head), str(obj.get("ETag", "")), obj["Key"], crc=_full_crc(head))

    def read_range(self, file: RemoteFile, start: int, end: int) -> Iterator[bytes | memoryview]:
        """GET with a presigned URL on the lean reader (botocore's read() path costs more CPU per byte)."""
        where = f"s3://{self._bucket}/{file.locator}"
        try:
            url = self._s3.generate_presigned_url("get_object", Params={"Bucket": self._bucket, "Key": file.locator}, ExpiresIn=3600)
        except (ClientError, BotoCoreError) as exc:
            raise _map(exc, where) from exc
        headers = {"If-Match": file.version} if file.version else {}
        return self._reader.read(url, start, end, where, headers)

    def close(self) -> None:
        self._s3.close()


def _full_object(head: dict[str, Any], key: str) -> str | None:
    value = head.get(key)
    if not value or "-" in value or head.get("ChecksumType", "FULL_OBJECT") != "FULL_OBJECT":
        return None  # composite (multipart) checksums are of the parts' checksums, not of the bytes
    return str(value)


def _full_sha256(head: dict[str, Any]) -> str | None:
    value = _full_object(head, "ChecksumSHA256")
    return base64.b64decode(value).hex() if value else None


def _full_crc(head: dict[str, Any]) -> Crc | None:
    for key, algorithm in (("ChecksumCRC32C", "crc32c"), ("ChecksumCRC32", "crc32")):
        value = _full_object(head, key)
        if value:
            return Crc.from_base64(algorithm, value)  # type: ignore[arg-type]
    return None


def _map(exc: Exception, where: str) -> PullError:
    if isinstance(exc, (NoCredentialsError, PartialCredentialsError)):
        return CredentialsError(f"{where}: no AWS credentials found", CRED_HINT)
    if isinstance(exc, ReadTimeoutError):
        return StallError(f"{where}: stalled, no bytes for the stall timeout")
    if isinstance(exc, (EndpointConnectionError, ConnectionClosedError, ResponseStreamingError)):
        return TransferError(f"{where}: {exc}")
    if isinstance(exc, ClientError):
        code = str(exc.response.get("Error", {}).get("Code", ""))
        if code in _NOT_FOUND:
            return NotFoundError(f"{where}: {code}", "check the bucket name and the object key or prefix")
        if code in _DENIED:
            return CredentialsError(f"{where}: access denied ({code})", CRED_HINT)
        if code in ("PreconditionFailed", "412"):
            return IntegrityError(f"{where}: the object changed during the pull", "run the pull again")
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        return TransferError(f"{where}: {code}") if status >= 500 or status in (408, 429) else SourceError(f"{where}: {code}")
    return TransferError(f"{where}: {exc.__class__.__name__}: {exc}")
