"""Server-sent events as relayed by the proxy: split into whole events, read usage.

The proxy forwards whole events (never a half event), so it can drop the usage-only
event it asked for on the client's behalf and end a cut stream with a clean error event.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

DONE = b"data: [DONE]"


class EventSplitter:
    """Feed bytes in, get complete ``\\n\\n``-terminated events out."""

    def __init__(self, max_pending: int = 1 << 20) -> None:
        self._buf = b""
        self._max = max_pending

    def feed(self, data: bytes) -> list[bytes]:
        buf = self._buf + data if self._buf else data
        if b"\n\n" not in buf:
            if len(buf) > self._max:
                raise ValueError("SSE event larger than the relay buffer")
            self._buf = buf
            return []
        *events, self._buf = buf.split(b"\n\n")
        return [e + b"\n\n" for e in events if e]

    @property
    def pending(self) -> bytes:
        return self._buf


def event_json(event: bytes) -> dict[str, Any] | None:
    """The JSON object of a ``data: {...}`` event; None for [DONE], comments or junk."""
    if not event.startswith(b"data: {"):
        return None
    try:
        obj = orjson.loads(event[6:])
    except ValueError:
        return None
    return obj if isinstance(obj, dict) else None


def is_done(event: bytes) -> bool:
    return event.startswith(DONE)


def error_event(message: str, code: str = "upstream_error") -> bytes:
    body = {"error": {"message": message, "type": "upstream_error", "param": None, "code": code}}
    return b"data: " + json.dumps(body).encode() + b"\n\n"
