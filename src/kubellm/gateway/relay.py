"""Relaying a committed SSE stream to the client, event by event, with backpressure.

``await out.write`` only returns once the client's socket buffer drains, so a slow
client slows the read from the engine instead of growing memory. A stream the engine
cuts ends with an OpenAI error event; a client that goes away closes the upstream
connection, which makes the engine abort the request.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from aiohttp import web

from kubellm.gateway.h1 import Response
from kubellm.gateway.sse import EventSplitter, error_event, event_json, is_done

CLOSING_GRACE_S = 2.0
"""After the total deadline, how long a client is given to take the timeout's error event."""

_CONTENT = re.compile(rb'"(?:content|text)":\s*"[^"]')  # a non-empty delta (chat) or text (completion)


@dataclass(slots=True)
class Accounting:
    """What one request used, filled in as it goes."""

    model: str
    tenant: str  # the tenant's name (access log)
    tenant_label: str = "unknown"  # its bounded metrics label (tenants.Tenant.label)
    started: float = field(default_factory=time.perf_counter)
    endpoint: str = "none"
    status: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int | None = None  # usage.prompt_tokens_details.cached_tokens, when reported
    first_token: float | None = None
    first_content: float | None = None  # first event with generated text (not a role-only chunk)
    on_first_content: Callable[[], None] | None = None  # told when first_content is seen (the latency learner)
    itl: list[float] = field(default_factory=list)
    done: bool = False

    def take_usage(self, usage: dict[str, object] | None) -> None:
        if usage:
            p, c = usage.get("prompt_tokens"), usage.get("completion_tokens")
            self.prompt_tokens = p if isinstance(p, int) else self.prompt_tokens
            self.completion_tokens = c if isinstance(c, int) else self.completion_tokens
            details = usage.get("prompt_tokens_details")
            cached = details.get("cached_tokens") if isinstance(details, dict) else None
            self.cached_tokens = cached if isinstance(cached, int) else self.cached_tokens


class StreamRelay:
    def __init__(self, acct: Accounting, *, drop_usage_event: bool) -> None:
        self._acct = acct
        self._drop_usage = drop_usage_event
        self._splitter = EventSplitter()
        self._last: float | None = None

    def process(self, data: bytes) -> bytes:
        """The bytes to send the client for *data* read from the engine."""
        out: list[bytes] = []
        for ev in self._splitter.feed(data):
            if self._acct.first_content is None and _CONTENT.search(ev):
                self._acct.first_content = time.perf_counter()  # the latency learner's TTFT
                if self._acct.on_first_content is not None:
                    self._acct.on_first_content()
            if is_done(ev):
                self._acct.done = True
            elif b'"usage":' in ev and b'"usage": null' not in ev and b'"usage":null' not in ev:
                obj = event_json(ev)
                if obj is not None:
                    self._acct.take_usage(obj.get("usage"))
                    if self._drop_usage and obj.get("choices") == []:
                        continue
            out.append(ev)
        if out:
            self._tick()
        return b"".join(out)

    def _tick(self) -> None:
        now = time.perf_counter()
        if self._acct.first_token is None:
            self._acct.first_token = now
        elif self._last is not None:
            self._acct.itl.append(now - self._last)
        self._last = now

    async def run(self, resp: Response, out: web.StreamResponse, first: bytes,
                  deadline: float) -> None:
        """Relay until [DONE], EOF, a cut or the total deadline, then end the client's stream;
        always closes *resp*. Writes to the client count against the deadline too, so a client
        that stops reading cannot hold the engine slot past it: it is cut off
        (``ConnectionResetError``) once it has not taken the timeout's error event within
        ``CLOSING_GRACE_S``."""
        try:
            try:
                async with asyncio.timeout_at(deadline):
                    await self._pump(resp, out, first)
            except TimeoutError:
                await write_by(out, error_event("the engine did not finish within the total timeout", "upstream_timeout"),
                               asyncio.get_running_loop().time() + CLOSING_GRACE_S)
                return
            if not self._acct.done:
                await write_by(out, error_event("the engine closed the stream before it finished"), deadline)
            await write_by(out, b"", deadline, eof=True)
        finally:
            if self._acct.done:
                resp.release()
            else:
                resp.close()

    async def _pump(self, resp: Response, out: web.StreamResponse, first: bytes) -> None:
        data = self.process(first)
        if data:
            await out.write(data)
        try:
            while not self._acct.done:
                chunk = await resp.readany()
                if not chunk:
                    break
                data = self.process(chunk)
                if data:
                    await out.write(data)
        except (OSError, ValueError):  # broken connection, or an event over the buffer limit
            pass


async def write_by(out: web.StreamResponse, data: bytes, until: float, *, eof: bool = False) -> None:
    """Write *data* (and end the stream if *eof*) by loop time *until*; a client that has not
    taken it by then counts as gone: its connection is not kept alive and
    ``ConnectionResetError`` is raised."""
    try:
        async with asyncio.timeout_at(until):
            if eof:
                await out.write_eof(data)
            else:
                await out.write(data)
    except TimeoutError:
        out.force_close()
        raise ConnectionResetError("the client stopped reading its stream") from None
