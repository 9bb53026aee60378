"""s3://bucket/prefix (AWS or any S3-compatible store: custom endpoint and CA bundle via settings).

Reads each range with GetObject + If-Match on the listed ETag, so an object replaced during
the pull fails loudly instead of mixing versions.

The object's stored checksum (CRC32, CRC32C, CRC64NVME, SHA1 or SHA256) is checked for what
it covers (`checksum_claim`): a full-object one over the bytes; a composite one (multipart
uploads: a checksum of the parts' checksums) over the same part boundaries, which
GetObjectAttributes reports, or HeadObject per part where a store does not list them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError, ClientError, ConnectionClosedError, EndpointConnectionError, NoCredentialsError,
    PartialCredentialsError, ReadTimeoutError, ResponseStreamingError,
)  # fmt: skip

from kubellm.pull.checksums import Algorithm, StoreChecksum
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
        self._chunk, self._streams = options.chunk_size, options.streams
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
        size = int(obj["Size"])
        head = self._s3.head_object(Bucket=self._bucket, Key=obj["Key"], ChecksumMode="ENABLED")
        if not head.get("ChecksumType") and _PARTS_SUFFIX.search(str(head.get("ETag", "")).strip('"')):
            head = {**head, "ChecksumType": self._checksum_type(obj["Key"])}
        claim, note = checksum_claim(head)
        check: StoreChecksum | None = None
        if claim is not None:
            check, note = self._store_checksum(obj["Key"], size, claim)
        sha256 = check.expected.hex() if check and check.algorithm == "sha256" and check.kind == "full" else None
        return RemoteFile(name, size, sha256, str(obj.get("ETag", "")), obj["Key"], store_checksum=check, store_note=note)

    def _store_checksum(self, key: str, size: int, claim: Claim) -> tuple[StoreChecksum | None, str]:
        try:
            if claim.parts is None:
                return StoreChecksum.from_base64(claim.algorithm, claim.value), ""
            sizes = self._part_sizes(key, claim.parts)
        except ValueError as exc:
            return None, f"the store's {claim.algorithm} is malformed ({exc})"
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            return None, f"composite {claim.algorithm} of {claim.parts} parts: the store did not give the part sizes ({code})"
        if sizes is None or sum(sizes) != size:
            return None, f"composite {claim.algorithm} of {claim.parts} parts: the part sizes the store reports do not add up to the object"
        return StoreChecksum.from_base64(claim.algorithm, claim.value, sizes), ""

    def _checksum_type(self, key: str) -> str | None:
        """The type GetObjectAttributes states for a multipart object whose HEAD omits it
        (moto's does), or None where the store does not say."""
        try:
            attributes = self._s3.get_object_attributes(Bucket=self._bucket, Key=key, ObjectAttributes=["Checksum"])
        except ClientError:
            return None
        kind = attributes.get("Checksum", {}).get("ChecksumType")
        return str(kind) if kind else None

    def _part_sizes(self, key: str, count: int) -> tuple[int, ...] | None:
        """Each part's size: from GetObjectAttributes (one call per 1,000 parts), else from
        HeadObject with PartNumber, one call per part, in parallel (stores that do not list
        parts, such as moto)."""
        sizes: list[int] = []
        marker = 0
        while len(sizes) < count:
            page = self._s3.get_object_attributes(
                Bucket=self._bucket, Key=key, ObjectAttributes=["ObjectParts"], MaxParts=1000, PartNumberMarker=marker
            )
            parts = page.get("ObjectParts", {}).get("Parts") or []
            if not parts:
                break
            sizes += [int(p["Size"]) for p in parts]
            marker = int(parts[-1]["PartNumber"])
        if len(sizes) == count:
            return tuple(sizes)
        with ThreadPoolExecutor(min(self._streams, count), "s3-parts") as pool:
            heads = pool.map(lambda n: self._s3.head_object(Bucket=self._bucket, Key=key, PartNumber=n), range(1, count + 1))
            return tuple(int(h["ContentLength"]) for h in heads)

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


_CHECKSUM_KEYS: tuple[tuple[str, Algorithm], ...] = (
    ("ChecksumCRC64NVME", "crc64nvme"), ("ChecksumCRC32C", "crc32c"), ("ChecksumCRC32", "crc32"),
    ("ChecksumSHA256", "sha256"), ("ChecksumSHA1", "sha1"),
)  # fmt: skip
_PARTS_SUFFIX = re.compile(r"-(\d+)$")


@dataclass(frozen=True)
class Claim:
    """What a HeadObject response says of the object's stored checksum."""

    algorithm: Algorithm
    value: str
    """Base64, without any ``-N`` part-count suffix."""
    parts: int | None
    """Composite over this many parts; None when the checksum covers the whole object."""


def checksum_claim(head: dict[str, Any]) -> tuple[Claim | None, str]:
    """The stored checksum and what it covers, or None and why there is nothing to check.

    A value covers the whole object when the store says ``FULL_OBJECT``, or gives no type for
    a single-part object (no ``-N`` on its ETag or value). A multipart object without a type
    (stores older than S3's ChecksumType, or moto) has a composite one: comparing it with the
    whole file's checksum would refuse every multipart upload. CRC64NVME is always of the
    whole object (S3 offers no composite form of it)."""
    found = next(((key, alg) for key, alg in _CHECKSUM_KEYS if head.get(key)), None)
    if found is None:
        return None, "the store keeps no checksum for this object"
    key, algorithm = found
    value = str(head[key])
    suffix = _PARTS_SUFFIX.search(value)
    etag_parts = _PARTS_SUFFIX.search(str(head.get("ETag", "")).strip('"'))
    kind = head.get("ChecksumType")
    value = value[: suffix.start()] if suffix else value
    # CRC64NVME exists only as a full-object checksum in S3.
    if kind == "FULL_OBJECT" or algorithm == "crc64nvme" or (kind is None and not suffix and not etag_parts):
        return Claim(algorithm, value, None), ""
    count = suffix or etag_parts
    parts = int(count[1]) if count else int(head.get("PartsCount") or 0)
    if parts < 1:
        return None, f"composite {algorithm}: the store does not say how many parts it covers"
    return Claim(algorithm, value, parts), ""


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
