"""az:// pulls against Azurite (Microsoft's Azure Storage emulator, from npm) on loopback."""

from __future__ import annotations

from pathlib import Path

import pytest
from azure.storage.blob import BlobServiceClient
from pull_testkit import safetensors_bytes

from kubellm.pull import PullOptions, SourceSettings, TransferOptions, pull
from kubellm.pull.errors import CredentialsError, NotFoundError

FAST = TransferOptions(streams=4, range_size=128 * 1024, retries=1, backoff_initial_s=0.01, stall_timeout_s=10)


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
