"""One exchange with one engine endpoint: send, time out, classify failures.

Library errors (aiohttp, timeouts) are mapped to the gateway's own tree here, once.
A :class:`Retryable` failure happened before anything reached the client, so the
proxy may try another endpoint.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from collections.abc import Callable
from typing import Any

import aiohttp
import orjson

from kubellm.gateway.config import Timeouts
from kubellm.gateway.errors import UpstreamError, UpstreamTimeoutError


class Retryable(Exception):
    """The attempt failed before the first byte; ``error`` is what the client sees if none is left."""

    def __init__(self, error: UpstreamError, response: tuple[int, bytes, str] | None = None) -> None:
        super().__init__(error.message)
        self.error = error
        self.response = response  # the engine's own error response, passed through on the last attempt


@dataclass(slots=True)
class Opened:
    """A streaming response whose first events have arrived."""

    response: aiohttp.ClientResponse
    first: bytes  # raw bytes read so far (at least one complete event)
    release: Callable[[], None] = lambda: None  # frees the endpoint slot once the stream ends


def client_timeout(t: Timeouts) -> aiohttp.ClientTimeout:
    return aiohttp.ClientTimeout(total=None, connect=t.connect_s, sock_connect=t.connect_s)


def _failure(url: str, exc: BaseException) -> Retryable:
    if isinstance(exc, TimeoutError):
        return Retryable(UpstreamTimeoutError(f"engine {url} timed out"))
    return Retryable(UpstreamError(f"engine {url} failed: {type(exc).__name__}"))


def _is_retryable_status(status: int) -> bool:
    return status >= 500 or status == 429


class Upstream:
    def __init__(self, session: aiohttp.ClientSession, timeouts: Timeouts) -> None:
        self._session = session
        self._t = timeouts
        self._timeout = client_timeout(timeouts)

    async def call(self, url: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes, str]:
        """A whole non-streamed exchange: (status, body, content type)."""
        try:
            async with asyncio.timeout(self._t.total_s):
                async with self._session.post(url, data=body, headers=headers, timeout=self._timeout) as resp:
                    data = await resp.read()
                    result = (resp.status, data, resp.content_type)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise _failure(url, exc) from exc
        if _is_retryable_status(result[0]):
            raise Retryable(UpstreamError(f"engine {url} answered {result[0]}"), result)
        return result

    async def open_stream(self, url: str, body: bytes, headers: dict[str, str]) -> Opened | tuple[int, bytes, str]:
        """Send, then wait (first-byte timeout) for a complete first event; a non-200 is returned whole."""
        resp: aiohttp.ClientResponse | None = None
        try:
            async with asyncio.timeout(self._t.first_byte_s):
                resp = await self._session.post(url, data=body, headers=headers, timeout=self._timeout)
                if resp.status != 200:
                    data = await resp.read()
                    resp.release()
                    result = (resp.status, data, resp.content_type)
                    if _is_retryable_status(resp.status):
                        raise Retryable(UpstreamError(f"engine {url} answered {resp.status}"), result)
                    return result
                first = b""
                while b"\n\n" not in first:
                    chunk = await resp.content.readany()
                    if not chunk:
                        raise aiohttp.ServerDisconnectedError("stream ended before its first event")
                    first += chunk
                return Opened(resp, first)
        except Retryable:
            raise
        except BaseException as exc:
            if resp is not None:
                resp.close()
            if isinstance(exc, (aiohttp.ClientError, TimeoutError, OSError)):
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
