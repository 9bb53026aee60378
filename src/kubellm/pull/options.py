"""Configuration of a pull: transfer tuning, filters, safety switches, source settings.

Environment variables are read once, in `SourceSettings.from_env`, called by the CLI. Each
variable may instead come as a file named after it in ``$KUBELLM_CREDENTIALS_DIR`` (how the
loader Job mounts the Secret of `spec.model.credentials`); the environment wins.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from kubellm.pull.errors import CredentialsError

MiB = 1024 * 1024
CREDENTIALS_DIR_VAR = "KUBELLM_CREDENTIALS_DIR"


class TransferOptions(BaseModel):
    """How bytes move: parallelism, memory bound, retries and timeouts."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    streams: int = Field(default=16, ge=1, le=256)
    """Concurrent range requests across all files."""
    range_size: int = Field(default=32 * MiB, ge=64 * 1024)
    """Bytes per range request; also the unit of resume."""
    chunk_size: int = Field(default=1 * MiB, ge=4096)
    """Bytes held in memory per stream at a time: peak buffer memory is streams x chunk_size."""
    retries: int = Field(default=5, ge=0)
    """Further attempts per range after the first fails with a retryable error."""
    backoff_initial_s: float = Field(default=0.5, gt=0)
    backoff_max_s: float = Field(default=20.0, gt=0)
    stall_timeout_s: float = Field(default=60.0, gt=0)
    """A request that delivers no byte for this long is aborted (and retried)."""
    connect_timeout_s: float = Field(default=20.0, gt=0)
    durable: bool = True
    """fdatasync ranges before recording them as done (resume stays correct after power loss)."""
    checkpoint_interval_s: float = Field(default=1.0, gt=0)
    """How often finished ranges are synced and recorded in the state file."""


class PullOptions(BaseModel):
    """What to pull and how strictly."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    allow_patterns: tuple[str, ...] = ()
    ignore_patterns: tuple[str, ...] = ()
    allow_pickle: bool = False
    """Pickle-based weights (.bin, .pt, .pth, .pkl, .ckpt) can run code when loaded."""
    revision: str | None = None
    """Overrides the revision in the URI (hf: branch/tag/commit; oci: tag or digest)."""
    verify: Literal["full", "size"] = "full"
    """On a complete cache: re-hash every file (full) or check sizes only (size)."""
    allow_http: bool = False
    """Permit plain http:// sources on hosts other than loopback."""
    transfer: TransferOptions = TransferOptions()


class SourceSettings(BaseModel):
    """Endpoints and credentials of the sources, gathered from the environment at the edge."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Secrets are left out of repr, so a logged or printed SourceSettings shows none of them.
    hf_token: str | None = Field(default=None, repr=False)
    hf_endpoint: str = "https://huggingface.co"
    s3_endpoint_url: str | None = None
    aws_access_key_id: str | None = Field(default=None, repr=False)
    aws_secret_access_key: str | None = Field(default=None, repr=False)
    aws_session_token: str | None = Field(default=None, repr=False)
    """Explicit S3 keys; when unset, boto3's own chain (shared file, IAM role...) applies."""
    ca_bundle: Path | None = None
    azure_connection_string: str | None = Field(default=None, repr=False)
    azure_account_url: str | None = None
    azure_account_key: str | None = Field(default=None, repr=False)
    gcs_endpoint: str | None = None
    mlflow_tracking_uri: str | None = None
    mlflow_token: str | None = Field(default=None, repr=False)
    model_registry_url: str | None = None
    """Kubeflow Model Registry: a URL, or host:port with model_registry_scheme."""
    model_registry_scheme: str = "https"
    model_registry_token: str | None = Field(default=None, repr=False)
    oci_username: str | None = None
    oci_password: str | None = Field(default=None, repr=False)
    oci_insecure: bool = False
    """Talk plain HTTP to the registry (a local registry without TLS)."""
    pvc_root: Path = Path("/mnt/pvc")
    """Where pvc://claim/path claims are mounted in the loader Job (claim under this root)."""

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> SourceSettings:
        """Settings from *env*; a variable not set there is read from the file
        ``$KUBELLM_CREDENTIALS_DIR/<NAME>`` (one trailing newline stripped) when that exists.
        The HF token also falls back to the file named by ``HF_TOKEN_PATH``."""
        directory = env.get(CREDENTIALS_DIR_VAR)
        root = Path(directory) if directory else None

        def get(*names: str) -> str | None:
            found = next((env[n] for n in names if env.get(n)), None)
            if found is None and root is not None:
                found = next((v for n in names if (v := _read_secret_file(root / n))), None)
            return found

        def hf_token() -> str | None:
            token = get("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")
            if token is None and (path := env.get("HF_TOKEN_PATH")):
                token = _read_secret_file(Path(path))
            return token

        account = get("AZURE_STORAGE_ACCOUNT")
        return cls(
            hf_token=hf_token(),
            hf_endpoint=get("HF_ENDPOINT") or "https://huggingface.co",
            s3_endpoint_url=get("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", "S3_ENDPOINT_URL"),
            aws_access_key_id=get("AWS_ACCESS_KEY_ID"),
            aws_secret_access_key=get("AWS_SECRET_ACCESS_KEY"),
            aws_session_token=get("AWS_SESSION_TOKEN"),
            ca_bundle=Path(p) if (p := get("AWS_CA_BUNDLE", "KUBELLM_CA_BUNDLE")) else None,
            azure_connection_string=get("AZURE_STORAGE_CONNECTION_STRING"),
            azure_account_url=get("AZURE_STORAGE_ACCOUNT_URL")
            or (f"https://{account}.blob.core.windows.net" if account else None),
            azure_account_key=get("AZURE_STORAGE_KEY", "AZURE_STORAGE_ACCOUNT_KEY"),
            gcs_endpoint=get("STORAGE_EMULATOR_HOST", "GCS_ENDPOINT"),
            mlflow_tracking_uri=get("MLFLOW_TRACKING_URI"),
            mlflow_token=get("MLFLOW_TRACKING_TOKEN"),
            model_registry_url=get("MODEL_REGISTRY_BASE_URL"),
            model_registry_scheme=get("MODEL_REGISTRY_SCHEME") or "https",
            model_registry_token=get("MODEL_REGISTRY_TOKEN"),
            oci_username=get("KUBELLM_OCI_USERNAME", "ORAS_USER"),
            oci_password=get("KUBELLM_OCI_PASSWORD", "ORAS_PASSWORD"),
            oci_insecure=((get("KUBELLM_OCI_INSECURE") or "").lower() in ("1", "true", "yes")),
            pvc_root=Path(get("KUBELLM_PVC_ROOT") or "/mnt/pvc"),
        )


def _read_secret_file(path: Path) -> str | None:
    """The file's text without one trailing newline; None when absent or empty. An unreadable
    file is an error naming the path, never the content."""
    try:
        text = path.read_text(encoding="utf-8")
    except (FileNotFoundError, NotADirectoryError):
        return None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc.__class__.__name__
        raise CredentialsError(
            f"cannot read the credentials file {path}: {reason}",
            "check the Secret's keys and that the loader can read the mounted files (fsGroup)",
        ) from None
    if text.endswith("\r\n"):
        text = text[:-2]
    elif text.endswith("\n"):
        text = text[:-1]
    return text or None
