"""Configuration of a pull: transfer tuning, filters, safety switches, source settings.

Environment variables are read once, in `SourceSettings.from_env`, called by the CLI.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

MiB = 1024 * 1024


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

    hf_token: str | None = None
    hf_endpoint: str = "https://huggingface.co"
    s3_endpoint_url: str | None = None
    ca_bundle: Path | None = None
    azure_connection_string: str | None = None
    azure_account_url: str | None = None
    azure_account_key: str | None = None
    gcs_endpoint: str | None = None
    mlflow_tracking_uri: str | None = None
    mlflow_token: str | None = None
    oci_username: str | None = None
    oci_password: str | None = None
    oci_insecure: bool = False
    """Talk plain HTTP to the registry (a local registry without TLS)."""
    pvc_root: Path = Path("/mnt/pvc")
    """Where pvc://claim/path claims are mounted in the loader Job (claim under this root)."""

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> SourceSettings:
        def get(*names: str) -> str | None:
            return next((env[n] for n in names if env.get(n)), None)

        account = get("AZURE_STORAGE_ACCOUNT")
        return cls(
            hf_token=get("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"),
            hf_endpoint=get("HF_ENDPOINT") or "https://huggingface.co",
            s3_endpoint_url=get("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", "S3_ENDPOINT_URL"),
            ca_bundle=Path(p) if (p := get("AWS_CA_BUNDLE", "KUBELLM_CA_BUNDLE")) else None,
            azure_connection_string=get("AZURE_STORAGE_CONNECTION_STRING"),
            azure_account_url=get("AZURE_STORAGE_ACCOUNT_URL")
            or (f"https://{account}.blob.core.windows.net" if account else None),
            azure_account_key=get("AZURE_STORAGE_KEY", "AZURE_STORAGE_ACCOUNT_KEY"),
            gcs_endpoint=get("STORAGE_EMULATOR_HOST", "GCS_ENDPOINT"),
            mlflow_tracking_uri=get("MLFLOW_TRACKING_URI"),
            mlflow_token=get("MLFLOW_TRACKING_TOKEN"),
            oci_username=get("KUBELLM_OCI_USERNAME", "ORAS_USER"),
            oci_password=get("KUBELLM_OCI_PASSWORD", "ORAS_PASSWORD"),
            oci_insecure=(env.get("KUBELLM_OCI_INSECURE", "").lower() in ("1", "true", "yes")),
            pvc_root=Path(get("KUBELLM_PVC_ROOT") or "/mnt/pvc"),
        )
