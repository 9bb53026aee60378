"""Model source URIs: parse and check them, purely (nothing is fetched here).

Accepted forms::

    hf://org/repo[@revision]        Hugging Face Hub
    s3://bucket/prefix              Amazon S3 (or any S3-compatible store)
    gs://bucket/prefix              Google Cloud Storage
    az://container/prefix           Azure Blob Storage
    https://host/path               plain HTTPS (a file or a directory listing)
    oci://registry/repo[:tag|@sha256:digest]   OCI artifact or image
    pvc://claim-name/path           weights already on a PersistentVolumeClaim
    models:/name/version            MLflow model registry
    model-registry://model/version  Kubeflow Model Registry
    sim://name                      the simulator's built-in model: no weights at all
"""

from __future__ import annotations

import re
from dataclasses import dataclass

SCHEMES = ("hf", "s3", "gs", "az", "https", "oci", "pvc", "models", "model-registry", "sim")

_PATTERNS: dict[str, re.Pattern[str]] = {
    "hf": re.compile(r"^hf://(?P<loc>[A-Za-z0-9][\w.-]*/[\w.-]+)(@(?P<rev>[\w./-]+))?$"),
    "s3": re.compile(r"^s3://(?P<loc>[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/[^\s]*)?)$"),
    "gs": re.compile(r"^gs://(?P<loc>[a-z0-9][a-z0-9._-]{1,220}[a-z0-9](/[^\s]*)?)$"),
    "az": re.compile(r"^az://(?P<loc>[a-z0-9][a-z0-9-]{1,61}[a-z0-9](/[^\s]*)?)$"),
    "https": re.compile(r"^https://(?P<loc>[A-Za-z0-9.-]+(:[0-9]+)?(/[^\s]*)?)$"),
    "oci": re.compile(
        r"^oci://(?P<loc>[a-z0-9.-]+(:[0-9]+)?(/[a-z0-9._-]+)+)(?P<rev>(:[\w][\w.-]{0,127})|(@sha256:[a-f0-9]{64}))?$"
    ),
    "pvc": re.compile(r"^pvc://(?P<loc>[a-z0-9]([-a-z0-9.]*[a-z0-9])?(/[^\s]*)?)$"),
    "models": re.compile(r"^models:/(?P<loc>[\w.-]+/([0-9]+|@[\w-]+|[\w-]+))$"),
    "model-registry": re.compile(r"^model-registry://(?P<loc>[\w.-]+/[\w.-]+)$"),
    "sim": re.compile(r"^sim://(?P<loc>[A-Za-z0-9][\w.-]*)$"),
}

_EXAMPLES = {
    "hf": "hf://mistralai/Mistral-7B-Instruct-v0.3@main",
    "s3": "s3://my-bucket/models/llama-3-8b",
    "gs": "gs://my-bucket/mistral-7b-instruct",
    "az": "az://models/llama-3-8b",
    "https": "https://example.com/models/model.gguf",
    "oci": "oci://registry.example.com/models/mistral:v1",
    "pvc": "pvc://model-cache/mistral-7b",
    "models": "models:/my-llm/3",
    "model-registry": "model-registry://llama-3-8b/v1",
    "sim": "sim://tiny-chat",
}


class UriError(ValueError):
    """A model URI that does not parse; the message says which form was expected."""


@dataclass(frozen=True)
class ModelUri:
    scheme: str
    location: str
    revision: str | None

    @property
    def last_segment(self) -> str:
        return self.location.rstrip("/").rsplit("/", 1)[-1]


def scheme_of(uri: str) -> str:
    if uri.startswith("models:/"):
        return "models"
    return uri.split("://", 1)[0] if "://" in uri else ""


def parse_model_uri(uri: str) -> ModelUri:
    """Parse *uri*; raise UriError naming the expected form when it does not match."""
    scheme = scheme_of(uri)
    if scheme not in _PATTERNS:
        raise UriError(
            f"unsupported model URI {uri!r}; use one of: "
            + ", ".join(f"{s}://" if s != "models" else "models:/" for s in SCHEMES)
        )
    match = _PATTERNS[scheme].match(uri)
    if match is None:
        raise UriError(f"malformed {scheme} URI {uri!r}; expected a form like {_EXAMPLES[scheme]!r}")
    revision = match.groupdict().get("rev")
    return ModelUri(scheme=scheme, location=match["loc"], revision=revision.lstrip(":@") if revision else None)
