"""Whole-file CRCs: the check values of the standard test vector, S3's base64 form, and the
S3 driver's choice of which checksum of a HEAD response it can check."""

from __future__ import annotations

import base64
import hashlib
import os
import random
import zlib
from pathlib import Path

import pytest

from kubellm.pull.checksums import Crc, RunningCrc
from kubellm.pull.drivers.s3 import _full_crc
from kubellm.pull.fsio import hash_region

CHECK = b"123456789"  # the CRC catalogue's check input


@pytest.mark.parametrize(("algorithm", "value"), [("crc32", 0xCBF43926), ("crc32c", 0xE3069283)])
def test_check_values_fed_in_pieces(algorithm: str, value: int) -> None:
    crc = RunningCrc(algorithm)  # type: ignore[arg-type]
    for piece in (CHECK[:4], memoryview(CHECK)[4:]):
        crc.update(piece)
    assert crc.value == value


def test_base64_form_and_its_errors() -> None:
    assert Crc.from_base64("crc32", base64.b64encode((0xCBF43926).to_bytes(4, "big")).decode()) == Crc("crc32", 0xCBF43926)
    with pytest.raises(ValueError, match="4 bytes"):
        Crc.from_base64("crc32", base64.b64encode(b"12345").decode())


def test_only_full_object_checksums_are_taken() -> None:
    b64 = base64.b64encode((0xE3069283).to_bytes(4, "big")).decode()
    assert _full_crc({"ChecksumCRC32C": b64, "ChecksumType": "FULL_OBJECT"}) == Crc("crc32c", 0xE3069283)
    assert _full_crc({"ChecksumCRC32C": b64 + "-3"}) is None  # multipart: a checksum of checksums
    assert _full_crc({"ChecksumCRC32": b64, "ChecksumType": "COMPOSITE"}) is None
    assert _full_crc({"ETag": "x"}) is None


def test_hash_region_matches_hashlib_at_unaligned_offsets_across_windows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import kubellm.pull.fsio as fsio

    monkeypatch.setattr(fsio, "_MAP_WINDOW", 3 * 4096)  # many windows over a small file
    data = random.Random(7).randbytes(50_000)
    path = tmp_path / "f"
    path.write_bytes(data)
    fd = os.open(path, os.O_RDONLY)
    try:
        for start, end in ((0, 50_000), (1, 49_999), (4095, 12_289), (30_000, 30_000)):
            digest, crc = hashlib.sha256(), RunningCrc("crc32")
            hash_region([digest, crc], fd, start, end)
            assert digest.digest() == hashlib.sha256(data[start:end]).digest()
            assert crc.value == zlib.crc32(data[start:end])
        with pytest.raises(ValueError):
            hash_region([hashlib.sha256()], fd, 0, 60_000)  # past the end of the file
    finally:
        os.close(fd)

