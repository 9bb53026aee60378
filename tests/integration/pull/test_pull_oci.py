"""oci:// pulls from a real distribution registry (Debian `docker-registry`) on loopback, with
model artifacts pushed by the `oras` Python client."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import oras.client
import pytest
from pull_testkit import safetensors_bytes

from kubellm.pull import PullOptions, SourceSettings, TransferOptions, pull
from kubellm.pull.errors import IntegrityError, NotFoundError
from kubellm.pull.manifest import read_manifest

FAST = TransferOptions(streams=4, range_size=128 * 1024, retries=1, backoff_initial_s=0.01, stall_timeout_s=10)


def _push(registry: str, target: str, workdir: Path, files: dict[str, bytes], dirs: tuple[str, ...] = ()) -> None:
    for name, data in files.items():
        (workdir / name).parent.mkdir(parents=True, exist_ok=True)
        (workdir / name).write_bytes(data)
    cwd = os.getcwd()
    os.chdir(workdir)  # oras-py wants pushed paths relative to the working directory
    try:
        client = oras.client.OrasClient(hostname=registry, insecure=True)
        client.push(target=f"{registry}/{target}", files=[n for n in files if "/" not in n] + list(dirs))
    finally:
        os.chdir(cwd)


def test_pulls_an_oras_artifact_by_tag_and_by_digest(registry: str, tmp_path: Path) -> None:
    weights = safetensors_bytes(300_000)
    files = {"model.safetensors": weights, "config.json": b'{"x": 1}', "tok/vocab.json": b"[]"}
    _push(registry, "models/tiny:v1", tmp_path / "src", files, dirs=("tok",))
    result = pull(f"oci://{registry}/models/tiny:v1", tmp_path / "m", PullOptions(transfer=FAST), SourceSettings())
    assert (tmp_path / "m/model.safetensors").read_bytes() == weights
    assert (tmp_path / "m/tok/vocab.json").read_bytes() == b"[]"  # directory layer unpacked safely
    assert result.revision is not None and result.revision.startswith("sha256:")
    manifest = read_manifest(tmp_path / "m")
    assert manifest is not None
    assert {e.path: e.sha256 for e in manifest.files}["model.safetensors"] == hashlib.sha256(weights).hexdigest()
    by_digest = pull(f"oci://{registry}/models/tiny@{result.revision}", tmp_path / "d", PullOptions(transfer=FAST), SourceSettings())
    assert by_digest.revision == result.revision and by_digest.files == 3


def test_missing_tag_is_named(registry: str, tmp_path: Path) -> None:
    _push(registry, "models/other:v1", tmp_path / "src", {"a.json": b"{}"})
    with pytest.raises(NotFoundError, match="no manifest 'v2'"):
        pull(f"oci://{registry}/models/other:v2", tmp_path / "m", PullOptions(transfer=FAST), SourceSettings())


def test_a_blob_altered_in_the_registry_is_refused(registry_with_root: tuple[str, Path], tmp_path: Path) -> None:
    registry, storage = registry_with_root
    weights = safetensors_bytes(50_000)
    _push(registry, "models/tamper:v1", tmp_path / "src", {"model.safetensors": weights})
    digest = hashlib.sha256(weights).hexdigest()
    blob = storage / "docker/registry/v2/blobs/sha256" / digest[:2] / digest / "data"
    altered = bytearray(blob.read_bytes())
    altered[-1] ^= 0xFF  # same size, one flipped bit in the tensor data
    blob.write_bytes(bytes(altered))
    with pytest.raises(IntegrityError, match=f"model.safetensors: sha256 .* does not match the source's {digest}"):
        pull(f"oci://{registry}/models/tamper:v1", tmp_path / "m", PullOptions(transfer=FAST), SourceSettings())
    assert not (tmp_path / "m").exists()
