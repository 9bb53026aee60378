"""Checks that keep unsafe content out of the cache: names, pickle weights, safetensors.

All pure except `check_safetensors_file`, which reads a header from disk.
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

from kubellm.pull.errors import SafetensorsError, UnsafeContentError

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt")
RESERVED_PREFIX = ".kubellm"
_MAX_HEADER = 100 * 1024 * 1024  # the safetensors format's own upper bound
_DTYPE_BYTES = {
    "BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "F8_E8M0": 1,
    "I16": 2, "U16": 2, "F16": 2, "BF16": 2,
    "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8,
}  # fmt: skip


def check_relative_path(name: str) -> str:
    """Return *name* as a clean relative POSIX path, or raise if it could escape the destination."""
    if not name or "\\" in name or "\x00" in name:
        raise UnsafeContentError(f"refusing file name {name!r}", "names must be plain relative paths")
    path = PurePosixPath(name)
    if path.is_absolute() or any(part in ("..", ".", "") for part in name.split("/")):
        raise UnsafeContentError(
            f"refusing file name {name!r}: it escapes the destination",
            "the source holds a path-traversal name; fix the source",
        )
    if path.parts[0].startswith(RESERVED_PREFIX):
        raise UnsafeContentError(f"refusing file name {name!r}", f"names starting {RESERVED_PREFIX} are reserved")
    return str(path)


def is_pickle_name(name: str) -> bool:
    return name.lower().endswith(PICKLE_SUFFIXES)


def refuse_pickles(names: Iterable[str]) -> None:
    """Raise naming every pickle-based weight file in *names*."""
    found = sorted(n for n in names if is_pickle_name(n))
    if found:
        raise UnsafeContentError(
            f"refusing pickle-based weights (they can run code when loaded): {', '.join(found)}",
            "skip them with --ignore '*.bin' (use the .safetensors files; spec: model.ignorePatterns), "
            "or pass --allow-pickle if you trust this source (spec: model.allowPickle: true)",
        )


def check_safetensors_header(header: bytes, file_size: int) -> None:
    """Check a parsed safetensors header (JSON, after the 8-byte length) against the file size."""
    try:
        table = json.loads(header)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SafetensorsError(f"safetensors header is not JSON: {exc}") from exc
    if not isinstance(table, dict):
        raise SafetensorsError("safetensors header is not a JSON object")
    data_size = file_size - 8 - len(header)
    end = max((_tensor_end(k, v) for k, v in table.items() if k != "__metadata__"), default=0)
    if end != data_size:
        raise SafetensorsError(
            f"safetensors tensors end at byte {end} of the data area but it holds {data_size} bytes",
            "the file is truncated or corrupt",
        )


def _tensor_end(name: str, info: object) -> int:
    if not isinstance(info, dict):
        raise SafetensorsError(f"tensor {name!r}: entry is not an object")
    offsets, dtype, shape = info.get("data_offsets"), info.get("dtype"), info.get("shape")
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(isinstance(o, int) for o in offsets)):
        raise SafetensorsError(f"tensor {name!r}: bad data_offsets {offsets!r}")
    if dtype not in _DTYPE_BYTES or not isinstance(shape, list):
        raise SafetensorsError(f"tensor {name!r}: unknown dtype {dtype!r} or bad shape")
    begin, end = offsets
    if not 0 <= begin <= end or end - begin != _DTYPE_BYTES[dtype] * math.prod(shape):
        raise SafetensorsError(f"tensor {name!r}: offsets {offsets} do not match {dtype}{shape}")
    return int(end)


def check_safetensors_file(path: Path, display_name: str) -> None:
    """Parse the header of a .safetensors file on disk; raise `SafetensorsError` naming it."""
    size = path.stat().st_size
    try:
        with path.open("rb") as handle:
            if size < 8:
                raise SafetensorsError("shorter than the 8-byte header length")
            (length,) = struct.unpack("<Q", handle.read(8))
            if length > min(_MAX_HEADER, size - 8):
                raise SafetensorsError(f"header length {length} exceeds the file ({size} bytes)")
            check_safetensors_header(handle.read(length), size)
    except SafetensorsError as exc:
        raise SafetensorsError(f"{display_name}: {exc.message}", exc.hint or "the file is truncated or corrupt") from exc
