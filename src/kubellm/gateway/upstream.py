"""One exchange with one engine endpoint: send, time out, classify failures.

Requests go through the gateway's own HTTP/1.1 client (:mod:`kubellm.gateway.h1`).
Connection errors and timeouts are mapped to the gateway's own tree here, once.
A :class:`Retryable` failure happened before anything reached the client, so the
proxy may try another endpoint.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from collections.abc import Callable
from typing import Any

import orjson

from kubellm.gateway.config import Timeouts
from kubellm.gateway.deadlines import Deadlines
from kubellm.gateway.errors import UpstreamError, UpstreamTimeoutError
from kubellm.gateway.h1 import H1Pool, Response, UpstreamConnectionError


class Retryable(Exception):
    """The attempt failed before the first byte; ``error`` is what the client sees if none is left."""

    def __init__(self, error: UpstreamError, response: tuple[int, bytes, str] | None = None) -> None:
        super().__init__(error.message)
        self.error = error
        self.response = response  # the engine's own error response, passed through on the last attempt


@dataclass(slots=True)
class Opened:
    """A streaming response whose first events have arrived."""

    response: Response
    first: bytes  # raw bytes read so far (at least one complete event)
    release: Callable[[], None] = lambda: None  # frees the endpoint slot once the stream ends


def _failure(url: str, exc: BaseException) -> Retryable:
    if isinstance(exc, TimeoutError):
        return Retryable(UpstreamTimeoutError(f"engine {url} timed out"))
    detail = str(exc) if isinstance(exc, UpstreamConnectionError) else type(exc).__name__
    return Retryable(UpstreamError(f"engine {url} failed: {detail}"))


def _is_retryable_status(status: int) -> bool:
    return status >= 500 or status == 429


class Upstream:
    def __init__(self, pool: H1Pool, timeouts: Timeouts) -> None:
        self._pool = pool
        self._t = timeouts
        self._total = Deadlines(timeouts.total_s)  # asyncio.timeout's behaviour, without a timer each
        self._first_byte = Deadlines(timeouts.first_byte_s)

    async def call(self, url: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes, str]:
        """A whole non-streamed exchange: (status, body, content type)."""
        try:
            with self._total.scope():
                resp = await self._pool.post(url, body, headers, connect_timeout=self._t.connect_s)
                try:
                    data = await resp.read()
                finally:
                    resp.release()  # reused if complete, else closed
                result = (resp.status, data, resp.content_type)
        except (TimeoutError, OSError) as exc:
            raise _failure(url, exc) from exc
        if _is_retryable_status(result[0]):
            raise Retryable(UpstreamError(f"engine {url} answered {result[0]}"), result)
        return result

    async def open_stream(self, url: str, body: bytes, headers: dict[str, str]) -> Opened | tuple[int, bytes, str]:
        """Send, then wait (first-byte timeout) for a complete first event; a non-200 is returned whole."""
        resp: Response | None = None
        try:
            with self._first_byte.scope():
                resp = await self._pool.post(url, body, headers, connect_timeout=self._t.connect_s)
                if resp.status != 200:
                    data = await resp.read()
                    resp.release()
                    result = (resp.status, data, resp.content_type)
                    if _is_retryable_status(resp.status):
                        raise Retryable(UpstreamError(f"engine {url} answered {resp.status}"), result)
                    return result
                first = b""
                while b"\n\n" not in first:
                    chunk = await resp.readany()
                    if not chunk:
                        raise UpstreamConnectionError("the stream ended before its first event")
                    first += chunk
                return Opened(resp, first)
        except Retryable:
            raise
        except BaseException as exc:
            if resp is not None:
                resp.close()
            if isinstance(exc, (TimeoutError, OSError)):
                raise _failure(url, exc) from exc
            raise


def usage_of(body: bytes) -> dict[str, Any] | None:
    """The ``usage`` object of a non-streamed JSON response, if any."""
    try:
        obj = orjson.loads(body)
    except ValueError:
        return None
    usage = obj.get("usage") if isinstance(obj, dict) else None
    return usage if isinstance(usage, dict) else None
