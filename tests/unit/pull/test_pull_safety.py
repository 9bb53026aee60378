"""Name checks, pickle refusal and safetensors header checks (pure)."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from kubellm.pull.errors import SafetensorsError, UnsafeContentError
from kubellm.pull.safety import check_relative_path, check_safetensors_file, check_safetensors_header, is_pickle_name, refuse_pickles


@pytest.mark.parametrize("name", ["a.json", "sub/dir/model.safetensors", "tok..json", "..hidden-ok"])
def test_clean_names_pass(name: str) -> None:
    assert check_relative_path(name) == name


@pytest.mark.parametrize(
    "name", ["", "/etc/passwd", "../x", "a/../../x", "a/./b", "a//b", "a\\b", "x\x00y", ".kubellm-manifest.json", "a/"]
)
def test_unsafe_names_are_refused(name: str) -> None:
    with pytest.raises(UnsafeContentError):
        check_relative_path(name)


@pytest.mark.parametrize(
    ("name", "pickle"),
    [("pytorch_model.bin", True), ("w.PT", True), ("x.pth", True), ("a.pkl", True), ("m.ckpt", True),
     ("m.safetensors", False), ("m.gguf", False), ("binary.json", False)],
)  # fmt: skip
def test_pickle_names(name: str, pickle: bool) -> None:
    assert is_pickle_name(name) is pickle


def test_refuse_pickles_names_every_file() -> None:
    with pytest.raises(UnsafeContentError, match="a.bin, b/c.pt"):
        refuse_pickles(["b/c.pt", "ok.safetensors", "a.bin"])
    refuse_pickles(["ok.safetensors"])


def _header(tensors: dict[str, object]) -> bytes:
    return json.dumps(tensors).encode()


@pytest.mark.parametrize(
    ("tensors", "data_size", "error"),
    [
        ({"a": {"dtype": "F16", "shape": [2, 3], "data_offsets": [0, 12]}}, 12, None),
        ({"a": {"dtype": "F16", "shape": [2, 3], "data_offsets": [0, 12]}, "__metadata__": {"x": "y"}}, 12, None),
        ({"a": {"dtype": "F16", "shape": [2, 3], "data_offsets": [0, 12]}}, 10, "truncated"),
        ({"a": {"dtype": "F16", "shape": [2, 3], "data_offsets": [0, 10]}}, 10, "do not match"),
        ({"a": {"dtype": "Q4", "shape": [2], "data_offsets": [0, 1]}}, 1, "unknown dtype"),
        ({"a": {"dtype": "F32", "shape": [1], "data_offsets": [8, 4]}}, 8, "do not match"),
        ({"a": [1, 2]}, 0, "not an object"),
    ],
)
def test_safetensors_header_against_size(tensors: dict[str, object], data_size: int, error: str | None) -> None:
    header = _header(tensors)
    size = 8 + len(header) + data_size
    if error is None:
        check_safetensors_header(header, size)
    else:
        with pytest.raises(SafetensorsError, match=error):
            check_safetensors_header(header, size)


def test_safetensors_file_with_absurd_header_length(tmp_path: Path) -> None:
    path = tmp_path / "m.safetensors"
    path.write_bytes(struct.pack("<Q", 10**12) + b"{}")
    with pytest.raises(SafetensorsError, match="m.safetensors: header length"):
        check_safetensors_file(path, "m.safetensors")
    path.write_bytes(b"abc")
    with pytest.raises(SafetensorsError, match="shorter than"):
        check_safetensors_file(path, "m.safetensors")
