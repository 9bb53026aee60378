"""One source driver per URI scheme; `build_driver` picks it (lazy imports keep SDKs optional)."""

from __future__ import annotations

from pathlib import Path

from kubellm.pull.errors import PullInputError
from kubellm.pull.options import PullOptions, SourceSettings
from kubellm.pull.source import SourceDriver
from kubellm.pull.uri import SourceUri, parse_source


def build_driver(source: SourceUri, options: PullOptions, settings: SourceSettings) -> SourceDriver:
    scheme = source.scheme
    revision = options.revision or source.revision
    t = options.transfer
    if scheme in ("file", "pvc"):
        from kubellm.pull.drivers.local import LocalDriver

        root = settings.pvc_root / source.location if scheme == "pvc" else None
        return LocalDriver(root or _file_path(source.location), t)
    if scheme == "s3":
        from kubellm.pull.drivers.s3 import S3Driver

        return S3Driver(source.location, settings, t)
    if scheme in ("https", "http"):
        from kubellm.pull.drivers.http import HttpDriver

        return HttpDriver(source.raw, settings, t)
    if scheme == "hf":
        from kubellm.pull.drivers.hf import HfDriver

        return HfDriver(source.location, revision, settings, t)
    if scheme == "oci":
        from kubellm.pull.drivers.oci import OciDriver

        return OciDriver(source.location, revision, settings, t)
    if scheme == "az":
        from kubellm.pull.drivers.azure import AzureDriver

        return AzureDriver(source.location, settings, t)
    if scheme == "gs":
        from kubellm.pull.drivers.gcs import GcsDriver

        return GcsDriver(source.location, settings, t)
    if scheme == "models":
        from kubellm.pull.drivers.mlflow import resolve_model_version

        target = resolve_model_version(source.location, settings, t)
        return build_driver(parse_source(target, allow_http=options.allow_http), options, settings)
    if scheme == "model-registry":
        from kubellm.pull.drivers.model_registry import resolve_registry_version

        stored = resolve_registry_version(source.location, settings, t)
        return build_driver(parse_source(stored, allow_http=options.allow_http), options, settings)
    raise PullInputError(f"no driver for {scheme}:// sources")


def _file_path(location: str) -> Path:
    return Path(location)
