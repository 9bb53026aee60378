"""A lean range reader over `http.client`, for the hot path of signed-URL sources (S3).

Bytes go from the socket straight into a reused per-thread buffer (`readinto`), and the
caller writes them out before asking for the next chunk: no per-chunk allocation, one copy
fewer than a `read()` API. Connections are kept per thread and per host. Stalls surface
as socket timeouts (the stall timeout is the socket timeout).
"""

from __future__ import annotations

import http.client
import socket
import ssl
import threading
from collections.abc import Iterator, Mapping
from urllib.parse import urlsplit

from kubellm.pull.errors import CredentialsError, NotFoundError, PullError, SourceError, StallError, TransferError


class RangeReader:
    def __init__(self, chunk_size: int, timeout_s: float, ca_bundle: str | None = None) -> None:
        self._chunk, self._timeout = chunk_size, timeout_s
        self._ssl = ssl.create_default_context(cafile=ca_bundle)
        self._local = threading.local()

    def read(self, url: str, start: int, end: int, what: str, headers: Mapping[str, str]) -> Iterator[memoryview]:
        """Yield [start, end) of *url*; each view is valid only until the next one is requested."""
        parts = urlsplit(url)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        request_headers = {**headers, "Range": f"bytes={start}-{end - 1}"}
        try:
            conn = self._connection(parts.scheme, parts.netloc)
            conn.request("GET", target, headers=request_headers)
            response = conn.getresponse()
            _check(response, what)
            yield from self._body(response)
        except PullError:
            self._drop(parts.netloc)
            raise
        except (TimeoutError, socket.timeout) as exc:
            self._drop(parts.netloc)
            raise StallError(f"{what}: stalled, no bytes for the stall timeout") from exc
        except (OSError, http.client.HTTPException) as exc:
            self._drop(parts.netloc)
            raise TransferError(f"{what}: {exc.__class__.__name__}: {exc}") from exc
        except GeneratorExit:
            self._drop(parts.netloc)  # the caller stopped early: the connection holds unread bytes
            raise

    def _body(self, response: http.client.HTTPResponse) -> Iterator[memoryview]:
        buffer = self._buffer()
        while True:
            n = response.readinto(buffer)
            if not n:
                return
            yield buffer[:n]

    def _buffer(self) -> memoryview:
        buffer: memoryview | None = getattr(self._local, "buffer", None)
        if buffer is None:
            buffer = self._local.buffer = memoryview(bytearray(self._chunk))
        return buffer

    def _connection(self, scheme: str, netloc: str) -> http.client.HTTPConnection:
        pool: dict[str, http.client.HTTPConnection] = self._local.__dict__.setdefault("pool", {})
        conn = pool.get(netloc)
        if conn is None:
            if scheme == "https":
                conn = http.client.HTTPSConnection(netloc, timeout=self._timeout, context=self._ssl)
            else:
                conn = http.client.HTTPConnection(netloc, timeout=self._timeout)
            pool[netloc] = conn
        return conn

    def _drop(self, netloc: str) -> None:
        pool: dict[str, http.client.HTTPConnection] = self._local.__dict__.setdefault("pool", {})
        conn = pool.pop(netloc, None)
        if conn is not None:
            conn.close()


def _check(response: http.client.HTTPResponse, what: str) -> None:
    code = response.status
    if code in (200, 206):
        return
    body = response.read(4096).decode(errors="replace")
    if code in (401, 403):
        raise CredentialsError(f"{what}: access denied (HTTP {code})", "check the credentials")
    if code == 404:
        raise NotFoundError(f"{what}: not found (HTTP 404)", "check the URI")
    if code == 412:
        raise SourceError(f"{what}: the object changed during the pull", "run the pull again")
    if code in (408, 429) or code >= 500:
        raise TransferError(f"{what}: HTTP {code}: {body[:200]}")
    raise SourceError(f"{what}: HTTP {code}: {body[:200]}")
