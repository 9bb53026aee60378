"""Whole-file CRCs that object stores vouch for (S3 ChecksumCRC32/ChecksumCRC32C of
full-object uploads, the crc32c every GCS object has), checked beside the sha256 in the same
pass over the bytes. crc32c runs at ~8 GB/s (google-crc32c, hardware) and crc32 at ~2.5 GB/s
(zlib) here, against sha256's 1.3 GB/s: checking them costs little."""

from __future__ import annotations

import base64
import zlib
from dataclasses import dataclass
from typing import Literal

import google_crc32c

Algorithm = Literal["crc32", "crc32c"]


@dataclass(frozen=True)
class Crc:
    """A CRC of the whole file, as the source states it."""

    algorithm: Algorithm
    value: int

    @classmethod
    def from_base64(cls, algorithm: Algorithm, text: str) -> Crc:
        """S3 and GCS give a CRC as the base64 of its 4 big-endian bytes."""
        raw = base64.b64decode(text)
        if len(raw) != 4:
            raise ValueError(f"a {algorithm} is 4 bytes, got {len(raw)}")
        return cls(algorithm, int.from_bytes(raw, "big"))

    def __str__(self) -> str:
        return f"{self.algorithm} {self.value:08x}"


class RunningCrc:
    """A CRC fed block by block (a hashlib-like ``update``)."""

    def __init__(self, algorithm: Algorithm) -> None:
        self.algorithm, self.value = algorithm, 0

    def update(self, data: bytes | memoryview) -> None:
        if self.algorithm == "crc32":
            self.value = zlib.crc32(data, self.value)
        else:
            # google-crc32c takes only bytes (its C argument format refuses views of an mmap):
            # one copy of the block, ~0.1 s/GB, paid only where the source gives a crc32c.
            self.value = int(google_crc32c.extend(self.value, data if isinstance(data, bytes) else bytes(data)))
