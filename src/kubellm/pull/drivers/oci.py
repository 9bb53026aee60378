"""oci://registry/repo[:tag|@sha256:digest]: model artifacts in an OCI registry (as `oras push` makes).

Talks the OCI distribution API directly (manifests, then blobs with Range requests), so large
layers download in parallel ranges and resume; `oras` itself streams each blob in one piece.
Each layer's file name is its `org.opencontainers.image.title` annotation; a layer that oras
marked for unpacking (a pushed directory) is a tar.gz unpacked safely. Every blob is checked
against its sha256 digest. Auth: anonymous, basic, or the bearer-token flow registries use.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import json
import re
from collections.abc import Iterator
from typing import Any

import httpx

from kubellm.pull.drivers.httpio import make_client, send, status_error, stream_range
from kubellm.pull.errors import CredentialsError, NotFoundError, PullInputError, SourceError
from kubellm.pull.options import SourceSettings, TransferOptions
from kubellm.pull.source import Listing, RemoteFile

MANIFEST_TYPES = ", ".join(
    (
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.oci.image.index.v1+json",
    )
)
TITLE = "org.opencontainers.image.title"
UNPACK = "io.deis.oras.content.unpack"
DIR_TYPE = "application/vnd.oci.image.layer.v1.tar+gzip"
AUTH_HINT = "set KUBELLM_OCI_USERNAME and KUBELLM_OCI_PASSWORD (from the Secret in spec.model.credentials)"


class OciDriver:
    def __init__(self, location: str, revision: str | None, settings: SourceSettings, options: TransferOptions) -> None:
        registry, _, self._repo = location.partition("/")
        insecure = settings.oci_insecure or _is_loopback(registry.rsplit(":", 1)[0])
        self._base = f"{'http' if insecure else 'https'}://{registry}/v2/{self._repo}"
        self._ref = revision or "latest"
        self._where = f"oci://{location}"
        self._auth = (settings.oci_username, settings.oci_password or "") if settings.oci_username else None
        self._headers: dict[str, str] = {}
        self._chunk = options.chunk_size
        self._client = make_client(options, settings.ca_bundle)

    def list_files(self) -> Listing:
        body, digest = self._manifest()
        manifest = json.loads(body)
        if "manifests" in manifest:
            raise PullInputError(f"{self._where}:{self._ref} is an image index", "name one manifest by its @sha256: digest")
        files = tuple(self._describe(layer) for layer in manifest.get("layers", ()))
        return Listing(files, revision=digest)

    def _manifest(self) -> tuple[bytes, str]:
        url = f"{self._base}/manifests/{self._ref}"
        response = self._get(url, {"Accept": MANIFEST_TYPES})
        if response.status_code == 404:
            raise NotFoundError(f"{self._where}: no manifest {self._ref!r}", "check the repository and the tag or digest")
        _raise_for(response, self._where)
        digest = "sha256:" + hashlib.sha256(response.content).hexdigest()
        if self._ref.startswith("sha256:") and digest != self._ref:
            raise SourceError(f"{self._where}: manifest digest {digest} does not match {self._ref}")
        return response.content, digest

    def _describe(self, layer: dict[str, Any]) -> RemoteFile:
        annotations = layer.get("annotations") or {}
        name, digest = annotations.get(TITLE), str(layer.get("digest", ""))
        if not name:
            raise SourceError(f"{self._where}: layer {digest} has no file name", "push model files with oras, which names each layer")
        algorithm, _, hexdigest = digest.partition(":")
        # oras marks a pushed directory with an annotation (Go CLI) or the tar+gzip type (oras-py)
        unpack = str(annotations.get(UNPACK, "")).lower() == "true" or layer.get("mediaType") == DIR_TYPE
        return RemoteFile(
            name, int(layer["size"]), hexdigest if algorithm == "sha256" else None, digest,
            f"{self._base}/blobs/{digest}", archive=unpack,
        )  # fmt: skip

    def read_range(self, file: RemoteFile, start: int, end: int) -> Iterator[bytes]:
        return stream_range(self._client, file.locator, start, end, file.path, self._chunk, self._headers)

    def _get(self, url: str, headers: dict[str, str]) -> httpx.Response:
        response = send(self._client, "GET", url, self._where, headers={**headers, **self._headers})
        if response.status_code == 401 and not self._headers:
            self._headers = self._authorize(response.headers.get("www-authenticate", ""))
            response = send(self._client, "GET", url, self._where, headers={**headers, **self._headers})
        return response

    def _authorize(self, challenge: str) -> dict[str, str]:
        scheme, _, params = challenge.partition(" ")
        if scheme.lower() == "basic":
            if self._auth is None:
                raise CredentialsError(f"{self._where}: the registry needs credentials", AUTH_HINT)
            user, password = self._auth
            token = base64.b64encode(f"{user}:{password or ''}".encode()).decode()
            return {"Authorization": f"Basic {token}"}
        if scheme.lower() != "bearer":
            raise CredentialsError(f"{self._where}: unsupported auth challenge {challenge!r}")
        fields = dict(re.findall(r'(\w+)="([^"]*)"', params))
        query = {k: v for k, v in fields.items() if k in ("service", "scope")}
        response = send(self._client, "GET", fields.get("realm", ""), self._where, params=query, auth=self._auth)
        _raise_for(response, f"{self._where} (token)")
        token = response.json().get("token") or response.json().get("access_token")
        return {"Authorization": f"Bearer {token}"}

    def close(self) -> None:
        self._client.close()


def _raise_for(response: httpx.Response, what: str) -> None:
    error = status_error(response, what, AUTH_HINT)
    if error is not None:
        raise error


def _is_loopback(host: str) -> bool:
    try:
        return host == "localhost" or ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
