"""http(s):// pulls against aiohttp's static file server on loopback (Range requests): single
files, digests pinned in the URI, tar/zip archives unpacked safely, and a stalled server."""

from __future__ import annotations

import hashlib
import io
import tarfile
import time
import zipfile
from pathlib import Path

import pytest
from pull_testkit import safetensors_bytes

from kubellm.pull import PullOptions, SourceSettings, TransferOptions, pull
from kubellm.pull.errors import IntegrityError, NotFoundError, PullInputError, StallError, UnsafeContentError
from kubellm.pull.manifest import read_manifest

FAST = TransferOptions(streams=4, range_size=128 * 1024, retries=1, backoff_initial_s=0.01, stall_timeout_s=10)
Server = tuple[str, Path]


def _tar(members: dict[str, bytes], links: dict[str, str] | None = None) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tar.addfile(info)
    return buffer.getvalue()


def test_single_file_in_ranges(file_server: Server, tmp_path: Path) -> None:
    url, root = file_server
    data = safetensors_bytes(200_000)
    (root / "w.safetensors").write_bytes(data)
    digest = hashlib.sha256(data).hexdigest()
    result = pull(f"{url}/files/w.safetensors#sha256={digest}", tmp_path / "m", PullOptions(transfer=FAST), SourceSettings())
    assert result.files == 1 and (tmp_path / "m/w.safetensors").read_bytes() == data


def test_pinned_digest_mismatch_is_refused(file_server: Server, tmp_path: Path) -> None:
    url, root = file_server
    (root / "t.gguf").write_bytes(b"GGUF tampered")
    with pytest.raises(IntegrityError, match="does not match"):
        pull(f"{url}/files/t.gguf#sha256={'1' * 64}", tmp_path / "m", PullOptions(transfer=FAST), SourceSettings())
    assert not (tmp_path / "m").exists()


def test_tar_archive_is_unpacked_into_the_manifest(file_server: Server, tmp_path: Path) -> None:
    url, root = file_server
    weights = safetensors_bytes(1000)
    (root / "model.tar.gz").write_bytes(_tar({"model/a.safetensors": weights, "model/config.json": b"{}"}))
    pull(f"{url}/files/model.tar.gz", tmp_path / "m", PullOptions(transfer=FAST), SourceSettings())
    manifest = read_manifest(tmp_path / "m")
    assert manifest is not None and [e.path for e in manifest.files] == ["model/a.safetensors", "model/config.json"]
    assert (tmp_path / "m/model/a.safetensors").read_bytes() == weights
    assert not (tmp_path / "m/model.tar.gz").exists() and not (tmp_path / "m/.kubellm-archives").exists()


@pytest.mark.parametrize(
    ("name", "payload", "message"),
    [
        ("dotdot.tar.gz", _tar({"../../evil.sh": b"x"}), "escapes the destination"),
        ("abs.tar.gz", _tar({"/etc/passwd": b"x"}), "escapes the destination"),
        ("link.tar.gz", _tar({"a.json": b"{}"}, links={"b": "/etc/shadow"}), "links and devices"),
    ],
)
def test_unsafe_tar_members_are_refused(file_server: Server, tmp_path: Path, name: str, payload: bytes, message: str) -> None:
    url, root = file_server
    (root / name).write_bytes(payload)
    with pytest.raises(UnsafeContentError, match=message):
        pull(f"{url}/files/{name}", tmp_path / "m", PullOptions(transfer=FAST), SourceSettings())
    assert not (tmp_path / "m").exists() and not list(tmp_path.rglob("evil.sh")) and not list(tmp_path.rglob("b"))


def test_zip_traversal_is_refused(file_server: Server, tmp_path: Path) -> None:
    url, root = file_server
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("ok.json", "{}")
        zf.writestr("../escape.txt", "x")
    (root / "bad.zip").write_bytes(buffer.getvalue())
    with pytest.raises(UnsafeContentError, match="escapes"):
        pull(f"{url}/files/bad.zip", tmp_path / "m", PullOptions(transfer=FAST), SourceSettings())
    assert not (tmp_path / "escape.txt").exists()


def test_stalled_server_is_aborted_after_the_stall_timeout(file_server: Server, tmp_path: Path) -> None:
    url, root = file_server
    (root / "big.gguf").write_bytes(bytes(64 * 1024))
    options = PullOptions(transfer=TransferOptions(streams=1, range_size=1024 * 1024, retries=1, backoff_initial_s=0.01, stall_timeout_s=0.5))
    started = time.monotonic()
    with pytest.raises(StallError, match="stalled"):
        pull(f"{url}/stall/big.gguf", tmp_path / "m", options, SourceSettings())
    assert time.monotonic() - started < 10  # two attempts of 0.5 s each, not an hour
    assert not (tmp_path / "m").exists()


def test_missing_file_and_plain_http_off_loopback(file_server: Server, tmp_path: Path) -> None:
    url, _ = file_server
    with pytest.raises(NotFoundError, match="404"):
        pull(f"{url}/files/nope.gguf", tmp_path / "m", PullOptions(transfer=FAST), SourceSettings())
    with pytest.raises(PullInputError, match="--allow-http"):
        pull("http://models.example.com/x.gguf", tmp_path / "m", PullOptions(transfer=FAST), SourceSettings())
