"""http(s):// pulls against aiohttp's static file server on loopback (Range requests): single
files, digests pinned in the URI, tar/zip archives unpacked safely, and a stalled server; and
against Python's http.server, which ignores Range requests."""

from __future__ import annotations

import hashlib
import io
import subprocess
import sys
import tarfile
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from pull_testkit import free_port, safetensors_bytes, stop, wait_http

from kubellm.pull import PullOptions, SourceSettings, TransferOptions, pull
from kubellm.pull.errors import IntegrityError, NotFoundError, PullInputError, StallError, UnsafeContentError
from kubellm.pull.manifest import read_manifest
from kubellm.pull.progress import NullProgress

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


@pytest.fixture(params=["ranges", "no-ranges"])
def either_server(request: pytest.FixtureRequest) -> Server:
    """(URL of the files, their directory) on a server with Range support, and on one without."""
    if request.param == "ranges":
        url, root = request.getfixturevalue("file_server")
        return f"{url}/files", root
    return request.getfixturevalue("plain_server")  # type: ignore[no-any-return]


def test_pinned_digest_mismatch_is_refused(either_server: Server, tmp_path: Path) -> None:
    url, root = either_server
    (root / "t.gguf").write_bytes(b"GGUF tampered")
    with pytest.raises(IntegrityError, match="does not match"):
        pull(f"{url}/t.gguf#sha256={'1' * 64}", tmp_path / "m", PullOptions(transfer=FAST), SourceSettings())
    assert not (tmp_path / "m").exists()


def test_tar_archive_is_unpacked_into_the_manifest(either_server: Server, tmp_path: Path) -> None:
    url, root = either_server
    weights = safetensors_bytes(50_000)
    (root / "model.tar.gz").write_bytes(_tar({"model/a.safetensors": weights, "model/config.json": b"{}"}))
    pull(f"{url}/model.tar.gz", tmp_path / "m", PullOptions(transfer=FAST), SourceSettings())
    assert (tmp_path / "m/model/a.safetensors").read_bytes() == weights
    manifest = read_manifest(tmp_path / "m")
    assert manifest is not None and [e.path for e in manifest.files] == ["model/a.safetensors", "model/config.json"]
    assert all(e.verification and "unpacked from model.tar.gz" in e.verification.detail for e in manifest.files)
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


@pytest.fixture(scope="module")
def plain_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Python's own `http.server`: answers every GET with 200 and the whole file (no Range
    support), like many simple file servers and generated downloads."""
    root = tmp_path_factory.mktemp("plain")
    port = free_port()
    cmd = [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1", "--directory", str(root)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_http(f"http://127.0.0.1:{port}/")
        yield f"http://127.0.0.1:{port}", root
    finally:
        stop(proc)


class Recorder(NullProgress):
    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, object]]] = []

    def event(self, name: str, **fields: object) -> None:
        self.events.append((name, fields))


def test_a_server_without_range_support_gives_one_verified_stream_and_a_warning(plain_server: Server, tmp_path: Path) -> None:
    url, root = plain_server
    data = safetensors_bytes(300_000)  # 1.2 MB: ten ranges' worth at FAST's range size
    (root / "w.safetensors").write_bytes(data)
    recorder = Recorder()
    digest = hashlib.sha256(data).hexdigest()
    pull(f"{url}/w.safetensors#sha256={digest}", tmp_path / "m", PullOptions(transfer=FAST), SourceSettings(), progress=recorder)
    assert (tmp_path / "m/w.safetensors").read_bytes() == data
    warnings = [str(f["message"]) for name, f in recorder.events if name == "warning"]
    assert len(warnings) == 1 and "does not answer Range requests" in warnings[0] and "restarts from zero" in warnings[0]


def test_the_cli_warns_that_the_download_cannot_resume(plain_server: Server, tmp_path: Path) -> None:
    url, root = plain_server
    (root / "tiny.gguf").write_bytes(b"GGUF" + bytes(5000))
    kubellm = str(Path(sys.executable).parent / "kubellm")
    done = subprocess.run([kubellm, "pull", f"{url}/tiny.gguf", str(tmp_path / "m"), "--progress", "none"],
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "warning:" in done.stderr and "cannot resume" in done.stderr
    assert (tmp_path / "m/tiny.gguf").stat().st_size == 5004
