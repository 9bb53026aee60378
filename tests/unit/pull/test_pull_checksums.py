"""Store checksums: the check values of the standard test vectors, composite checksums over
part boundaries, S3's base64 forms, and which checksum of a HEAD response the S3 driver may
compare (full, composite, or none, and why)."""

from __future__ import annotations

import base64
import hashlib
import os
import random
import zlib
from pathlib import Path
from typing import Any

import pytest

from kubellm.pull.checksums import ChecksumRunner, StoreChecksum, new_hasher
from kubellm.pull.drivers.s3 import Claim, checksum_claim
from kubellm.pull.fsio import hash_region

CHECK = b"123456789"  # the CRC catalogue's check input


@pytest.mark.parametrize(
    ("algorithm", "value"),
    [
        ("crc32", "cbf43926"), ("crc32c", "e3069283"), ("crc64nvme", "ae8b14860a799888"),
        ("sha1", hashlib.sha1(CHECK).hexdigest()), ("sha256", hashlib.sha256(CHECK).hexdigest()),
        ("md5", hashlib.md5(CHECK).hexdigest()),
    ],
)  # fmt: skip
def test_check_values_fed_in_pieces(algorithm: Any, value: str) -> None:
    hasher = new_hasher(algorithm)
    for piece in (CHECK[:4], memoryview(CHECK)[4:]):
        hasher.update(piece)
    assert hasher.digest().hex() == value


def _composite(algorithm: Any, data: bytes, sizes: list[int]) -> bytes:
    """S3's composite checksum, written out the slow and obvious way."""
    digests, offset = b"", 0
    for size in sizes:
        part = new_hasher(algorithm)
        part.update(data[offset : offset + size])
        digests += part.digest()
        offset += size
    combined = new_hasher(algorithm)
    combined.update(digests)
    return combined.digest()


@pytest.mark.parametrize("algorithm", ["crc32", "crc32c", "crc64nvme", "sha1", "sha256"])
def test_composite_checksum_is_recomputed_over_the_part_boundaries(algorithm: Any) -> None:
    data = random.Random(3).randbytes(10_000)
    sizes = (4096, 4096, 1808)
    check = StoreChecksum(algorithm, _composite(algorithm, data, list(sizes)), sizes)
    runner = ChecksumRunner(check)
    for start in range(0, len(data), 999):  # pieces that straddle the part boundaries
        runner.update(memoryview(data)[start : start + 999])
    assert runner.matches() and check.kind == "composite"
    wrong = StoreChecksum(algorithm, _composite(algorithm, data, [5000, 5000]), (4096, 4096, 1808))
    assert not ChecksumRunner(wrong).matches()


def test_a_composite_differs_from_the_full_checksum_so_comparing_them_refuses_good_bytes() -> None:
    """The bug of issue 19: a multipart object's composite CRC compared with the file's CRC."""
    data = random.Random(4).randbytes(3000)
    assert _composite("crc32", data, [1000, 1000, 1000]) != zlib.crc32(data).to_bytes(4, "big")


def test_more_bytes_than_the_parts_is_an_error() -> None:
    runner = ChecksumRunner(StoreChecksum("crc32", bytes(4), (2, 2)))
    with pytest.raises(ValueError, match="more bytes than the parts"):
        runner.update(b"12345")


def test_base64_form_and_its_errors() -> None:
    check = StoreChecksum.from_base64("crc32", base64.b64encode(bytes.fromhex("cbf43926")).decode())
    assert check.expected.hex() == "cbf43926" and check.kind == "full"
    assert str(check) == "crc32 of the whole object cbf43926"
    with pytest.raises(ValueError, match="4 bytes"):
        StoreChecksum.from_base64("crc32", base64.b64encode(b"12345").decode())
    with pytest.raises(ValueError):
        StoreChecksum.from_base64("crc32", "not base64!")


B64_CRC = base64.b64encode(bytes(4)).decode()
B64_SHA = base64.b64encode(bytes(32)).decode()
MULTI = '"79115a8820c1e8490891e7008f305fd2-3"'
SINGLE = '"79115a8820c1e8490891e7008f305fd2"'


@pytest.mark.parametrize(
    ("head", "claim"),
    [
        # the store says what its checksum covers
        ({"ChecksumCRC32": B64_CRC, "ChecksumType": "FULL_OBJECT", "ETag": MULTI}, Claim("crc32", B64_CRC, None)),
        ({"ChecksumCRC32C": B64_CRC, "ChecksumType": "COMPOSITE", "ETag": MULTI}, Claim("crc32c", B64_CRC, 3)),
        ({"ChecksumCRC64NVME": base64.b64encode(bytes(8)).decode(), "ChecksumType": "FULL_OBJECT"},
         Claim("crc64nvme", base64.b64encode(bytes(8)).decode(), None)),
        # no type: a single-part object's checksum is of its bytes ...
        ({"ChecksumSHA256": B64_SHA, "ETag": SINGLE}, Claim("sha256", B64_SHA, None)),
        # ... a multipart object's is composite (moto, stores older than ChecksumType): issue 19
        ({"ChecksumCRC32": B64_CRC, "ETag": MULTI}, Claim("crc32", B64_CRC, 3)),
        ({"ChecksumSHA1": B64_CRC + "-7", "ETag": SINGLE}, Claim("sha1", B64_CRC, 7)),
        ({"ChecksumCRC32": B64_CRC + "-2", "ChecksumType": "COMPOSITE"}, Claim("crc32", B64_CRC, 2)),
        ({"ChecksumCRC64NVME": base64.b64encode(bytes(8)).decode(), "ETag": MULTI},
         Claim("crc64nvme", base64.b64encode(bytes(8)).decode(), None)),
    ],
)  # fmt: skip
def test_which_checksum_a_head_response_vouches_for(head: dict[str, str], claim: Claim) -> None:
    assert checksum_claim(head) == (claim, "")


@pytest.mark.parametrize(
    ("head", "why"),
    [
        ({"ETag": SINGLE}, "keeps no checksum"),
        ({"ChecksumCRC32": B64_CRC, "ChecksumType": "COMPOSITE", "ETag": SINGLE}, "does not say how many parts"),
    ],
)
def test_nothing_to_compare_says_why(head: dict[str, str], why: str) -> None:
    claim, note = checksum_claim(head)
    assert claim is None and why in note


def test_hash_region_matches_hashlib_at_unaligned_offsets_across_windows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import kubellm.pull.fsio as fsio

    monkeypatch.setattr(fsio, "_MAP_WINDOW", 3 * 4096)  # many windows over a small file
    data = random.Random(7).randbytes(50_000)
    path = tmp_path / "f"
    path.write_bytes(data)
    fd = os.open(path, os.O_RDONLY)
    try:
        for start, end in ((0, 50_000), (1, 49_999), (4095, 12_289), (30_000, 30_000)):
            digest = hashlib.sha256()
            sizes = (1000, max(end - start - 1000, 0)) if end - start > 1000 else ()
            check = StoreChecksum("crc32c", _composite("crc32c", data[start:end], list(sizes)) if sizes else bytes(4), sizes)
            runner = ChecksumRunner(check)
            hash_region([digest, runner], fd, start, end)
            assert digest.digest() == hashlib.sha256(data[start:end]).digest()
            assert not sizes or runner.matches()
        with pytest.raises(ValueError):
            hash_region([hashlib.sha256()], fd, 0, 60_000)  # past the end of the file
    finally:
        os.close(fd)
