"""az:// pulls against Azurite (Microsoft's Azure Storage emulator, from npm) on loopback."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
from azure.storage.blob import BlobServiceClient, ContentSettings
from pull_testkit import safetensors_bytes

from kubellm.pull import PullOptions, SourceSettings, TransferOptions, pull
from kubellm.pull.errors import CredentialsError, IntegrityError, NotFoundError
from kubellm.pull.manifest import read_manifest

FAST = TransferOptions(streams=4, range_size=128 * 1024, retries=1, backoff_initial_s=0.01, stall_timeout_s=10)
_BLOCKS = {"max_block_size": 256 * 1024, "max_single_put_size": 256 * 1024}
"""Upload settings that make the SDK commit the blob from blocks (Put Block + Put Block List)."""


def test_pulls_a_container_prefix(azurite: str, tmp_path: Path) -> None:
    service = BlobServiceClient.from_connection_string(azurite)
    container = service.get_container_client("models")
    if not container.exists():
        container.create_container()
    weights = safetensors_bytes(200_000)
    container.upload_blob("llm/model.safetensors", weights, overwrite=True)
    container.upload_blob("llm/config.json", b"{}", overwrite=True)
    settings = SourceSettings(azure_connection_string=azurite)
    result = pull("az://models/llm", tmp_path / "m", PullOptions(transfer=FAST), settings)
    assert result.files == 2 and (tmp_path / "m/model.safetensors").read_bytes() == weights
    with pytest.raises(NotFoundError, match="no blobs under this prefix"):
        pull("az://models/none", tmp_path / "n", PullOptions(transfer=FAST), settings)


def test_no_azure_credentials_is_named(tmp_path: Path) -> None:
    with pytest.raises(CredentialsError, match="AZURE_STORAGE_CONNECTION_STRING"):
        pull("az://models/llm", tmp_path / "m", PullOptions(transfer=FAST), SourceSettings())


def _container(azurite: str, name: str, **client_settings: int) -> Any:
    container = BlobServiceClient.from_connection_string(azurite, **client_settings).get_container_client(name)
    if not container.exists():
        container.create_container()
    return container


def test_content_md5_is_checked_for_single_puts_and_block_uploads(azurite: str, tmp_path: Path) -> None:
    """A single Put Blob gets the service's MD5; a blob committed from blocks has one only
    when the uploader sets it (here: the whole blob's, as azcopy --put-md5 does)."""
    weights = safetensors_bytes(300_000)
    _container(azurite, "md5").upload_blob("single/model.safetensors", weights, overwrite=True)
    blocks = _container(azurite, "md5", **_BLOCKS)
    md5 = ContentSettings(content_md5=bytearray(hashlib.md5(weights).digest()))
    blocks.upload_blob("blocks/model.safetensors", weights, overwrite=True, content_settings=md5)
    blocks.upload_blob("bare/model.safetensors", weights, overwrite=True)
    settings = SourceSettings(azure_connection_string=azurite)
    details = {}
    for prefix in ("single", "blocks", "bare"):
        pull(f"az://md5/{prefix}", tmp_path / prefix, PullOptions(transfer=FAST), settings)
        manifest = read_manifest(tmp_path / prefix)
        assert manifest is not None and (tmp_path / prefix / "model.safetensors").read_bytes() == weights
        details[prefix] = manifest.files[0].verification
    assert details["single"] is not None and (details["single"].store_checksum, details["single"].algorithm) == ("full", "md5")
    assert details["blocks"] is not None and (details["blocks"].store_checksum, details["blocks"].algorithm) == ("full", "md5")
    assert details["bare"] is not None and details["bare"].store_checksum == "none" and "Content-MD5" in details["bare"].detail


def test_a_blob_whose_md5_does_not_match_is_refused(azurite: str, tmp_path: Path) -> None:
    container = _container(azurite, "md5bad", **_BLOCKS)
    weights = safetensors_bytes(100_000)
    wrong = ContentSettings(content_md5=bytearray(hashlib.md5(b"other bytes").digest()))
    container.upload_blob("m/model.safetensors", weights, overwrite=True, content_settings=wrong)
    with pytest.raises(IntegrityError, match="the store's md5 of the whole object"):
        pull("az://md5bad/m", tmp_path / "m", PullOptions(transfer=FAST), SourceSettings(azure_connection_string=azurite))
    assert not (tmp_path / "m").exists()
