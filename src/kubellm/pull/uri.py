"""Source URIs of `kubellm pull`: the spec's model URI forms, plus what only pull accepts.

The spec (`kubellm.spec.uri`) owns the forms a `LLMService` may name; pull reuses its parser
so both agree, and adds two edge forms: local paths (``/abs``, ``./rel``, ``file://``) and
plain ``http://`` (refused off loopback unless allowed). For ``az://container/prefix`` the
storage account comes from the environment, as the spec's form implies.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from urllib.parse import urlsplit

from kubellm.pull.errors import PullInputError
from kubellm.spec.uri import UriError, parse_model_uri


@dataclass(frozen=True)
class SourceUri:
    scheme: str
    """hf, s3, gs, az, https, http, oci, pvc, models or file."""
    location: str
    revision: str | None
    raw: str


def parse_source(uri: str, *, allow_http: bool = False) -> SourceUri:
    """Parse *uri* into a `SourceUri`, raising `PullInputError` naming the expected form."""
    if uri.startswith("file://"):
        return SourceUri("file", uri[len("file://") :], None, uri)
    if uri.startswith(("/", "./", "../")) or uri in (".", ".."):
        return SourceUri("file", uri, None, uri)
    if uri.startswith("http://"):
        return _parse_http(uri, allow_http)
    if uri.startswith("sim://"):
        raise PullInputError(f"{uri!r} is the simulator's built-in model", "there is nothing to pull")
    try:
        parsed = parse_model_uri(uri)
    except UriError as exc:
        raise PullInputError(str(exc), "or give a local path (/path or ./path)") from exc
    return SourceUri(parsed.scheme, parsed.location, parsed.revision, uri)


def _parse_http(uri: str, allow_http: bool) -> SourceUri:
    host = urlsplit(uri).hostname or ""
    if not (allow_http or _is_loopback(host)):
        raise PullInputError(
            f"plain http source {uri!r} is not encrypted",
            "use https://, or pass --allow-http if this network is trusted",
        )
    return SourceUri("http", uri[len("http://") :], None, uri)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
