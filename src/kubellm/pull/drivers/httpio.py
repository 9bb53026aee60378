"""HTTP plumbing shared by the https, Hugging Face and OCI drivers (httpx, synchronous).

Maps httpx errors and HTTP statuses into the pull error tree in one place.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path

import httpx

from kubellm.pull.errors import CredentialsError, NotFoundError, PullError, SourceError, StallError, TransferError
from kubellm.pull.options import TransferOptions


def make_client(options: TransferOptions, ca_bundle: Path | None = None) -> httpx.Client:
    timeout = httpx.Timeout(
        connect=options.connect_timeout_s, read=options.stall_timeout_s, write=options.stall_timeout_s, pool=None
    )
    limits = httpx.Limits(max_connections=options.streams + 4, max_keepalive_connections=options.streams + 4)
    verify: str | bool = str(ca_bundle) if ca_bundle else True
    return httpx.Client(timeout=timeout, limits=limits, follow_redirects=True, verify=verify)


def status_error(response: httpx.Response, what: str, hint_auth: str | None = None) -> PullError | None:
    """The pull error for a failed response, or None when the status is a success."""
    code = response.status_code
    if code < 400:
        return None
    if code in (401, 403):
        return CredentialsError(f"{what}: access denied (HTTP {code})", hint_auth or "check the credentials")
    if code == 404:
        return NotFoundError(f"{what}: not found (HTTP 404)", "check the URI")
    if code == 416:
        return TransferError(f"{what}: range not satisfiable (HTTP 416); the file changed at the source")
    error = TransferError(f"{what}: HTTP {code}") if code in (408, 429) or code >= 500 else SourceError(f"{what}: HTTP {code}")
    return error


def send(client: httpx.Client, method: str, url: str, what: str, **kwargs: object) -> httpx.Response:
    """A small request (metadata) with transport errors mapped."""
    try:
        return client.request(method, url, **kwargs)  # type: ignore[arg-type]
    except httpx.TimeoutException as exc:
        raise StallError(f"{what}: stalled, no response within the timeout ({exc.__class__.__name__})") from exc
    except httpx.HTTPError as exc:
        raise TransferError(f"{what}: {exc.__class__.__name__}: {exc}") from exc


def probe(client: httpx.Client, url: str, what: str, headers: Mapping[str, str]) -> httpx.Response:
    """The status and headers of a GET, its body left unread (a server that ignores the Range
    asked for would otherwise send the whole file here)."""
    try:
        with client.stream("GET", url, headers=headers) as response:
            return response
    except httpx.TimeoutException as exc:
        raise StallError(f"{what}: stalled, no response within the timeout ({exc.__class__.__name__})") from exc
    except httpx.HTTPError as exc:
        raise TransferError(f"{what}: {exc.__class__.__name__}: {exc}") from exc


def stream_range(
    client: httpx.Client, url: str, start: int, end: int, what: str, chunk: int, headers: Mapping[str, str] | None = None
) -> Iterator[bytes]:
    """Yield the bytes [start, end) of *url* with one Range request."""
    request_headers = {**(headers or {}), "Range": f"bytes={start}-{end - 1}", "Accept-Encoding": "identity"}
    try:
        with client.stream("GET", url, headers=request_headers) as response:
            error = status_error(response, what)
            if error is not None:
                raise error
            if response.status_code != 206 and start != 0:
                raise SourceError(f"{what}: the server ignores Range requests", "serve the file from a server that supports Range")
            yield from response.iter_raw(chunk)
    except httpx.TimeoutException as exc:
        raise StallError(f"{what}: stalled, no bytes for the stall timeout ({exc.__class__.__name__})") from exc
    except httpx.HTTPError as exc:
        raise TransferError(f"{what}: {exc.__class__.__name__}: {exc}") from exc


def body_message(response: httpx.Response) -> str:
    """The ``message`` of a JSON error body (MLflow's, the model registry's), else the text."""
    try:
        return str(response.json().get("message", response.text))
    except (ValueError, AttributeError):
        return response.text[:200]
