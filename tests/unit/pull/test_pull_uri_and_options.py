"""Source URI parsing (agrees with kubellm.spec's model URI forms) and options from the environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from kubellm.pull.errors import PullInputError
from kubellm.pull.options import SourceSettings
from kubellm.pull.uri import parse_source


@pytest.mark.parametrize(
    ("uri", "scheme", "location", "revision"),
    [
        ("hf://org/repo", "hf", "org/repo", None),
        ("hf://org/repo@v1.0", "hf", "org/repo", "v1.0"),
        ("s3://bucket/prefix/x", "s3", "bucket/prefix/x", None),
        ("gs://bucket/p", "gs", "bucket/p", None),
        ("az://container/p", "az", "container/p", None),
        ("oci://registry.io/models/m:v1", "oci", "registry.io/models/m", "v1"),
        ("oci://127.0.0.1:5000/m@sha256:" + "a" * 64, "oci", "127.0.0.1:5000/m", "sha256:" + "a" * 64),
        ("https://example.com/m.tar.gz", "https", "example.com/m.tar.gz", None),
        ("pvc://cache/mistral", "pvc", "cache/mistral", None),
        ("models:/chat/3", "models", "chat/3", None),
        ("/abs/path", "file", "/abs/path", None),
        ("./rel", "file", "./rel", None),
        ("file:///x/y", "file", "/x/y", None),
        ("http://127.0.0.1:8000/m.gguf", "http", "127.0.0.1:8000/m.gguf", None),
    ],
)
def test_forms(uri: str, scheme: str, location: str, revision: str | None) -> None:
    parsed = parse_source(uri)
    assert (parsed.scheme, parsed.location, parsed.revision) == (scheme, location, revision)


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("ftp://x/y", "unsupported model URI"),
        ("hf://only-org", "malformed hf URI"),
        ("http://models.example.com/m.gguf", "--allow-http"),
        ("sim://tiny", "nothing to pull"),
    ],
)
def test_bad_uris_say_what_to_fix(uri: str, message: str) -> None:
    with pytest.raises(PullInputError, match=message):
        parse_source(uri)


def test_http_off_loopback_allowed_when_asked() -> None:
    assert parse_source("http://models.internal/m.gguf", allow_http=True).scheme == "http"


def test_settings_from_env() -> None:
    env = {"HF_TOKEN": "hf_x", "AWS_ENDPOINT_URL": "http://s3.local", "AZURE_STORAGE_ACCOUNT": "acct",
           "AZURE_STORAGE_KEY": "k", "KUBELLM_OCI_INSECURE": "true", "KUBELLM_PVC_ROOT": "/cache"}  # fmt: skip
    settings = SourceSettings.from_env(env)
    assert settings.hf_token == "hf_x" and settings.s3_endpoint_url == "http://s3.local"
    assert settings.azure_account_url == "https://acct.blob.core.windows.net" and settings.oci_insecure
    assert settings.pvc_root == Path("/cache") and settings.hf_endpoint == "https://huggingface.co"
