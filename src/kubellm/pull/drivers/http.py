"""https:// (and loopback http://) sources: one file, or a tar/zip archive unpacked safely.

A digest can be pinned in the fragment: ``https://host/model.tar#sha256=<hex>``.
Directory listings are not crawled: name a file or an archive.

A server that answers Range requests gets parallel, resumable ranges. One that does not
(Python's http.server, many simple file servers and generated downloads) gets one stream,
the same verification and atomic commit, and a warning that an interrupted download starts
again from zero.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from urllib.parse import unquote, urlsplit

import httpx

from kubellm.pull.archive import is_archive_name
from kubellm.pull.drivers.httpio import make_client, probe, status_error, stream_range
from kubellm.pull.errors import PullInputError, SourceError
from kubellm.pull.options import SourceSettings, TransferOptions
from kubellm.pull.source import Listing, RemoteFile

_CONTENT_RANGE = re.compile(r"bytes \d+-\d+/(\d+)")


class HttpDriver:
    def __init__(self, uri: str, settings: SourceSettings, options: TransferOptions) -> None:
        url, _, fragment = uri.partition("#")
        self._url, self._sha256 = url, _pinned_sha256(fragment)
        self._chunk = options.chunk_size
        self._client = make_client(options, settings.ca_bundle)

    def list_files(self) -> Listing:
        name = unquote(urlsplit(self._url).path.rstrip("/").rsplit("/", 1)[-1])
        if not name:
            raise PullInputError(f"{self._url} names no file", "point the URI at a file or a .tar/.zip archive")
        response = probe(self._client, self._url, self._url, {"Range": "bytes=0-0", "Accept-Encoding": "identity"})
        error = status_error(response, self._url)
        if error is not None:
            raise error
        size, ranged = _size_and_ranges(response)
        etag = response.headers.get("etag")
        file = RemoteFile(name, size, self._sha256, etag, self._url, is_archive_name(name), ranged=ranged)
        notes = () if ranged else (_NO_RANGES.format(url=self._url),)
        return Listing((file,), revision=etag, notes=notes)

    def read_range(self, file: RemoteFile, start: int, end: int) -> Iterator[bytes]:
        headers = {"If-Range": file.version} if file.version else None
        return stream_range(self._client, file.locator, start, end, file.path, self._chunk, headers)

    def close(self) -> None:
        self._client.close()


def _pinned_sha256(fragment: str) -> str | None:
    if not fragment:
        return None
    match = re.fullmatch(r"sha256=([0-9a-f]{64})", fragment)
    if match is None:
        raise PullInputError(f"unknown URI fragment #{fragment}", "use #sha256=<64 hex digits> or none")
    return match[1]


_NO_RANGES = (
    "{url}: the server does not answer Range requests, so the file comes in one stream and an "
    "interrupted download cannot resume: it restarts from zero"
)


def _size_and_ranges(response: httpx.Response) -> tuple[int, bool]:
    """The file's size, and whether the server answered the Range request."""
    if response.status_code == 206:
        match = _CONTENT_RANGE.fullmatch(response.headers.get("content-range", ""))
        if match:
            return int(match[1]), True
    length = response.headers.get("content-length")
    if response.status_code == 200 and length and length.isdigit() and "content-encoding" not in response.headers:
        return int(length), False
    raise SourceError(
        f"{response.url}: the server answers neither Range requests nor with a Content-Length (HTTP {response.status_code})",
        "kubellm needs the file's size before it downloads; serve the file from a server that states it",
    )
