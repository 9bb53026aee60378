"""How drivers configure their SDK clients: memory bounds (Azure) and explicit keys (S3)."""

from __future__ import annotations

import pytest

from kubellm.pull.drivers.azure import AzureDriver, client_kwargs
from kubellm.pull.drivers.s3 import S3Driver
from kubellm.pull.options import MiB, SourceSettings, TransferOptions

# Azurite's published development account (not a secret); nothing is contacted.
AZURITE = ("DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6I"
           "FsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;BlobEndpoint=http://127.0.0.1:9/devstoreaccount1;")  # fmt: skip


def test_azure_get_sizes_are_the_chunk_size() -> None:
    options = TransferOptions(chunk_size=256 * 1024)
    kwargs = client_kwargs(options)
    # The SDK's first GET is max_single_get_size (32 MiB by default), buffered whole: bound it too.
    assert kwargs["max_single_get_size"] == kwargs["max_chunk_get_size"] == 256 * 1024
    assert kwargs["retry_total"] == 0


@pytest.mark.parametrize("chunk", [64 * 1024, 1 * MiB])
def test_azure_container_client_carries_the_bound(chunk: int) -> None:
    driver = AzureDriver("models/llm", SourceSettings(azure_connection_string=AZURITE), TransferOptions(chunk_size=chunk))
    config = driver._client._config  # noqa: SLF001 - the SDK keeps these settings only here
    assert (config.max_single_get_size, config.max_chunk_get_size) == (chunk, chunk)
    driver.close()


def test_s3_uses_explicit_keys_from_settings() -> None:
    settings = SourceSettings(aws_access_key_id="AKIAFILE", aws_secret_access_key="file-secret", aws_session_token="tok",
                              s3_endpoint_url="http://127.0.0.1:9")  # fmt: skip
    driver = S3Driver("bucket/prefix", settings, TransferOptions())
    credentials = driver._s3._request_signer._credentials  # noqa: SLF001
    assert (credentials.access_key, credentials.secret_key, credentials.token) == ("AKIAFILE", "file-secret", "tok")
