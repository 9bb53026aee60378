"""Where the weights come from: `spec.model`."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints, field_validator

from kubellm.spec.base import SecretRef, SpecModel
from kubellm.spec.uri import ModelUri, parse_model_uri

ServedName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$")]


def derive_served_name(uri: str) -> str:
    """The default served model name: the URI's last path segment, cleaned up."""
    try:
        segment = parse_model_uri(uri).last_segment
    except ValueError:
        return "model"
    segment = re.sub(r"\.gguf$", "", segment)
    cleaned = re.sub(r"[^A-Za-z0-9._-]", "-", segment).strip("-.")
    return cleaned or "model"


def _default_served_name(data: dict[str, Any]) -> str:
    return derive_served_name(str(data.get("uri", "")))


class ModelSource(SpecModel):
    """The model to serve and where its files come from."""

    uri: str
    """Source of the weights: hf://org/repo[@rev], s3://, gs://, az://, https://, oci://,
    pvc://claim/path, models:/name/version (MLflow), model-registry://model/version (Kubeflow
    Model Registry), or sim://name (the simulator: nothing is downloaded)."""
    served_name: ServedName = Field(default_factory=_default_served_name)
    """Name clients pass as `model` in OpenAI requests. Default: the URI's last segment."""
    format: Literal["safetensors", "gguf"] | None = None
    """Weight format. Default: gguf when the URI ends in .gguf or the engine is llamacpp,
    safetensors otherwise."""
    credentials: SecretRef | None = None
    """Secret holding the source's credentials, mounted as files into the loader Job only. Its
    keys are the variable names `kubellm pull` reads (HF_TOKEN; AWS_ACCESS_KEY_ID and
    AWS_SECRET_ACCESS_KEY; AZURE_STORAGE_CONNECTION_STRING; MLFLOW_TRACKING_TOKEN;
    KUBELLM_OCI_USERNAME and KUBELLM_OCI_PASSWORD...); a GCS service-account key goes under key.json."""
    allow_patterns: tuple[str, ...] = ()
    """Only files matching these glob patterns are pulled (empty: all)."""
    ignore_patterns: tuple[str, ...] = ()
    """Files matching these glob patterns are skipped."""
    allow_pickle: bool = False
    """Permit pickle-based weights (.bin, .pt, .pth, .pkl, .pickle, .ckpt). Dangerous: unpickling runs
    arbitrary code, so such a file can execute whatever its author wrote in the engine pod when
    it loads. Default false: a source holding pickle files is refused (skip them with
    ignorePatterns instead); set true only for a source you trust."""

    @field_validator("uri")
    @classmethod
    def _check_uri(cls, uri: str) -> str:
        parse_model_uri(uri)
        return uri

    @property
    def parsed(self) -> ModelUri:
        return parse_model_uri(self.uri)

    @property
    def scheme(self) -> str:
        return self.parsed.scheme
