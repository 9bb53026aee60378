"""gs:// pulls through google-cloud-storage against `gcp-storage-emulator` (PyPI), a local
emulator of the GCS JSON API (real Google Cloud Storage cannot be reached from here)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pull_testkit import StallingProxy, free_port, safetensors_bytes, stop, wait_http

from kubellm.pull import PullOptions, SourceSettings, TransferOptions, pull
from kubellm.pull.errors import IntegrityError, NotFoundError, StallError

FAST = TransferOptions(streams=2, range_size=256 * 1024, retries=1, backoff_initial_s=0.01, stall_timeout_s=10)


@pytest.fixture(scope="module")
def gcs_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """(URL, storage root) of the emulator; objects are files under the root (to tamper with)."""
    exe = shutil.which("gcp-storage-emulator") or str(Path(sys.executable).parent / "gcp-storage-emulator")
    if not Path(exe).exists():
        pytest.skip("gcp-storage-emulator is not installed (pip install -e '.[test]')")
    port, root = free_port(), tmp_path_factory.mktemp("gcs")
    cmd = [exe, "--data-dir", str(root), "start", "--host", "127.0.0.1", "--port", str(port)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=root)
    try:
        wait_http(f"http://127.0.0.1:{port}/storage/v1/b", ok=(200, 400, 404))
        yield f"http://127.0.0.1:{port}", root
    finally:
        stop(proc)


@pytest.fixture
def gcs(gcs_server: tuple[str, Path]) -> str:
    return gcs_server[0]


def _bucket(gcs: str, monkeypatch: pytest.MonkeyPatch, name: str) -> Any:
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs)
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    client = storage.Client(project="test", credentials=AnonymousCredentials())  # type: ignore[no-untyped-call]
    return client.create_bucket(name)


def test_the_objects_crc32c_is_checked(gcs_server: tuple[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every GCS object has a crc32c: bytes changed at rest after the upload are refused."""
    url, root = gcs_server
    bucket = _bucket(url, monkeypatch, "crc-models")
    weights = safetensors_bytes(120_000)
    bucket.blob("m/model.safetensors").upload_from_string(weights)
    settings = SourceSettings(gcs_endpoint=url)
    pull("gs://crc-models/m", tmp_path / "good", PullOptions(transfer=FAST), settings)
    (stored,) = [p for p in root.rglob("*") if p.is_file() and p.read_bytes() == weights]
    stored.write_bytes(weights[:-1] + bytes([weights[-1] ^ 0xFF]))
    with pytest.raises(IntegrityError, match="the store.s crc32c of the whole object is .*, the bytes received give"):
        pull("gs://crc-models/m", tmp_path / "bad", PullOptions(transfer=FAST), settings)
    assert not (tmp_path / "bad").exists()


def test_pulls_a_bucket_prefix(gcs: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs)
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    client = storage.Client(project="test", credentials=AnonymousCredentials())  # type: ignore[no-untyped-call]
    bucket = client.create_bucket("models")
    weights = safetensors_bytes(150_000)
    bucket.blob("llm/model.safetensors").upload_from_string(weights)
    bucket.blob("llm/config.json").upload_from_string(b"{}")
    settings = SourceSettings(gcs_endpoint=gcs)
    result = pull("gs://models/llm", tmp_path / "m", PullOptions(transfer=FAST), settings)
    assert result.files == 2 and (tmp_path / "m/model.safetensors").read_bytes() == weights
    with pytest.raises(NotFoundError, match="no objects under this prefix"):
        pull("gs://models/none", tmp_path / "n", PullOptions(transfer=FAST), settings)


def test_a_download_that_stalls_is_given_up_on_after_the_stall_timeout(
    gcs_server: tuple[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The emulator behind a proxy that stops forwarding mid-download: the pull retries, then
    fails with StallError after about retries x stall timeout, instead of hanging."""
    url, _ = gcs_server
    proxy = StallingProxy(url, stall_after=64 * 1024)
    try:
        # uploaded through the proxy too: the emulator's download links name the uploader's host
        bucket = _bucket(proxy.url, monkeypatch, "stall-models")
        bucket.blob("m/model.safetensors").upload_from_string(safetensors_bytes(100_000))
        options = PullOptions(transfer=TransferOptions(streams=1, range_size=256 * 1024, retries=1, backoff_initial_s=0.01,
                                                       stall_timeout_s=1))
        started = time.monotonic()
        with pytest.raises(StallError, match="stalled"):
            pull("gs://stall-models/m", tmp_path / "m", options, SourceSettings(gcs_endpoint=proxy.url))
        assert time.monotonic() - started < 15
        assert not (tmp_path / "m").exists()
    finally:
        proxy.close()
