"""Source URI parsing (agrees with kubellm.spec's model URI forms) and options from the environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from kubellm.pull.errors import CredentialsError, PullInputError
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


def secret_dir(tmp_path: Path, **files: str) -> Path:
    """A Secret as the kubelet mounts it: one file per key."""
    root = tmp_path / "creds"
    root.mkdir(exist_ok=True)
    for name, value in files.items():
        (root / name).write_text(value)
    return root


def test_settings_fall_back_to_files_in_the_credentials_dir(tmp_path: Path) -> None:
    root = secret_dir(tmp_path, HF_TOKEN="hf_file\n", AZURE_STORAGE_CONNECTION_STRING="conn\n",
                      AZURE_STORAGE_ACCOUNT="acct", AZURE_STORAGE_KEY="azkey\n", MLFLOW_TRACKING_TOKEN="mlt",
                      MLFLOW_TRACKING_URI="http://mlflow.local", KUBELLM_OCI_USERNAME="u", KUBELLM_OCI_PASSWORD="p\n",
                      AWS_ACCESS_KEY_ID="AKIA", AWS_SECRET_ACCESS_KEY="sekret\r\n", AWS_SESSION_TOKEN="st")  # fmt: skip
    settings = SourceSettings.from_env({"KUBELLM_CREDENTIALS_DIR": str(root)})
    assert settings.hf_token == "hf_file"
    assert settings.azure_connection_string == "conn" and settings.azure_account_key == "azkey"
    assert settings.azure_account_url == "https://acct.blob.core.windows.net"
    assert (settings.mlflow_token, settings.mlflow_tracking_uri) == ("mlt", "http://mlflow.local")
    assert (settings.oci_username, settings.oci_password) == ("u", "p")
    assert (settings.aws_access_key_id, settings.aws_secret_access_key, settings.aws_session_token) == ("AKIA", "sekret", "st")


def test_settings_environment_wins_over_files_and_aliases_are_read_from_files(tmp_path: Path) -> None:
    root = secret_dir(tmp_path, HF_TOKEN="hf_file", HUGGING_FACE_HUB_TOKEN="hf_alias", ORAS_PASSWORD="oras\n")
    settings = SourceSettings.from_env({"KUBELLM_CREDENTIALS_DIR": str(root), "HF_TOKEN": "hf_env"})
    assert settings.hf_token == "hf_env" and settings.oci_password == "oras"
    (root / "HF_TOKEN").unlink()
    assert SourceSettings.from_env({"KUBELLM_CREDENTIALS_DIR": str(root)}).hf_token == "hf_alias"


def test_hf_token_falls_back_to_hf_token_path(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("hf_path\n")
    assert SourceSettings.from_env({"HF_TOKEN_PATH": str(tmp_path / "token")}).hf_token == "hf_path"
    # The credentials dir comes first (in the loader Job both name the same file).
    root = secret_dir(tmp_path, HF_TOKEN="hf_dir")
    env = {"HF_TOKEN_PATH": str(tmp_path / "token"), "KUBELLM_CREDENTIALS_DIR": str(root)}
    assert SourceSettings.from_env(env).hf_token == "hf_dir"


def test_missing_or_empty_files_leave_settings_unset(tmp_path: Path) -> None:
    root = secret_dir(tmp_path, HF_TOKEN="\n", AZURE_STORAGE_KEY="")
    env = {"KUBELLM_CREDENTIALS_DIR": str(root), "HF_TOKEN_PATH": str(tmp_path / "absent")}
    settings = SourceSettings.from_env(env)
    assert settings.hf_token is None and settings.azure_account_key is None and settings.oci_password is None
    assert SourceSettings.from_env({"KUBELLM_CREDENTIALS_DIR": str(tmp_path / "no-such-dir")}) == SourceSettings()
    assert SourceSettings.from_env({}) == SourceSettings()


def test_secrets_stay_out_of_repr_and_errors(tmp_path: Path) -> None:
    root = secret_dir(tmp_path, HF_TOKEN="hf_SECRET", AZURE_STORAGE_KEY="AZ_SECRET", KUBELLM_OCI_PASSWORD="OCI_SECRET",
                      AWS_SECRET_ACCESS_KEY="AWS_SECRET", MLFLOW_TRACKING_TOKEN="ML_SECRET")  # fmt: skip
    settings = SourceSettings.from_env({"KUBELLM_CREDENTIALS_DIR": str(root)})
    shown = repr(settings) + str(settings)
    assert not [s for s in ("hf_SECRET", "AZ_SECRET", "OCI_SECRET", "AWS_SECRET", "ML_SECRET") if s in shown]
    # A file the loader cannot read is named by its path, its content never shown.
    (root / "HF_TOKEN").unlink()
    (root / "HF_TOKEN").mkdir()  # unreadable as a file even for root (chmod 0 is not)
    with pytest.raises(CredentialsError) as info:
        SourceSettings.from_env({"KUBELLM_CREDENTIALS_DIR": str(root)})
    assert str(root / "HF_TOKEN") in str(info.value) and "SECRET" not in str(info.value)
