"""A lean HTTP/1.1 client for the gateway's requests to engines.

The gateway sends one kind of request (a POST with a JSON body) to a few engines, over and
over; aiohttp's general client cost about a third of the gateway's CPU per request
(docs/gateway.md, the profile). Here: keep-alive connections per engine (host, port, TLS),
the request head and body in one socket write, the response parsed by llhttp (``httptools``,
chunked bodies included) straight into a buffer the caller reads from.

Backpressure: reading from the engine pauses while more than ``HIGH_WATER`` bytes wait
unread (a slow client slows the engine's stream instead of growing memory). A connection
returns to the pool only after a complete response that allows keep-alive. Errors are
:class:`UpstreamConnectionError` (a ``ConnectionError``, so an ``OSError``); a request on a
reused connection that the engine had closed (keep-alive race) is sent once more on a new
connection before anything is reported.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httptools

HIGH_WATER = 256 * 1024
_LOW_WATER = 64 * 1024
_MAX_IDLE = 64  # idle connections kept per engine
KEEPALIVE_S = 30.0  # an idle connection older than this is closed, not reused (as aiohttp's keepalive_timeout)


class UpstreamConnectionError(ConnectionError):
    """The engine's connection failed or closed before its response was complete."""


class UpstreamProtocolError(UpstreamConnectionError):
    """The engine's bytes are not an HTTP/1.1 response."""


Origin = tuple[str, int, bool]  # host, port, TLS: what a connection can be reused for


@dataclass(frozen=True, slots=True)
class Target:
    """A request URL, parsed once."""

    origin: Origin
    path: bytes
    host_header: bytes

    @classmethod
    def of(cls, url: str) -> Target:
        parts = urlsplit(url)
        tls = parts.scheme == "https"
        host = parts.hostname or ""
        port = parts.port or (443 if tls else 80)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        return cls((host, port, tls), path.encode(), parts.netloc.encode("idna"))


class Response:
    """One response: ``status`` and ``content_type`` once :meth:`H1Pool.post` returns it, then its body."""

    __slots__ = ("_conn", "status", "content_type", "keep_alive", "complete", "_chunks", "_buffered",
                 "_waiter", "_error", "_started")

    def __init__(self, conn: _Connection) -> None:
        self._conn = conn
        self.status = 0
        self.content_type = ""
        self.keep_alive = False
        self.complete = False
        self._chunks: deque[bytes] = deque()
        self._buffered = 0
        self._waiter: asyncio.Future[None] | None = None
        self._error: BaseException | None = None
        self._started: asyncio.Future[None] = conn.loop.create_future()

    # -- fed by the protocol ------------------------------------------------------------
    def _wake(self) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _headers(self, status: int, keep_alive: bool) -> None:
        self.status, self.keep_alive = status, keep_alive
        if not self._started.done():
            self._started.set_result(None)

    def _feed(self, data: bytes) -> None:
        self._chunks.append(data)
        self._buffered += len(data)
        if self._buffered > HIGH_WATER:
            self._conn.pause()
        self._wake()

    def _done(self) -> None:
        self.complete = True
        self._wake()

    def _fail(self, exc: BaseException) -> None:
        if self.complete:
            return
        self._error = exc
        if not self._started.done():
            self._started.set_exception(exc)
            self._started.exception()  # retrieved: a caller that gave up must not log it
        self._wake()

    # -- the caller's side --------------------------------------------------------------
    async def readany(self) -> bytes:
        """The body bytes buffered now (waiting for some if none); b"" at the end."""
        while not self._chunks:
            if self.complete:
                return b""
            if self._error is not None:
                raise self._error
            self._waiter = self._conn.loop.create_future()
            await self._waiter
        data = self._chunks.popleft() if len(self._chunks) == 1 else b"".join(self._chunks)
        self._chunks.clear()
        self._buffered = 0
        self._conn.resume()
        return data

    async def read(self) -> bytes:
        """The whole body."""
        if self.complete and self._error is None:  # all in already (the usual short answer): no await
            data = b"".join(self._chunks)
            self._chunks.clear()
            self._buffered = 0
            return data
        parts = []
        while chunk := await self.readany():
            parts.append(chunk)
        return b"".join(parts)

    def release(self) -> None:
        """Done with the response: its connection is reused if the response allows it."""
        if self.complete and self.keep_alive and self._error is None:
            self._conn.idle()
        else:
            self._conn.close()

    def close(self) -> None:
        """Abandon the response (the engine sees the connection close and aborts the request)."""
        self._conn.close()


class _Connection(asyncio.Protocol):
    def __init__(self, pool: H1Pool, origin: Origin, loop: asyncio.AbstractEventLoop) -> None:
        self.pool, self.origin, self.loop = pool, origin, loop
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.response: Response | None = None
        self.closed = False
        self._paused = False
        self._framed = False  # the response's body has a length or chunks (else: until the connection ends)
        self._interim = False  # reading a 1xx answer's head
        self.idle_since = 0.0

    # -- asyncio.Protocol ---------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if self.response is None:  # bytes nobody asked for: this connection is unusable
            self.close()
            return
        try:
            self.parser.feed_data(data)
        except (httptools.HttpParserError, httptools.HttpParserUpgrade) as exc:  # the latter is no ParserError
            self.response._fail(UpstreamProtocolError(f"invalid HTTP response from the engine: {exc}"))
            self.close()

    def connection_lost(self, exc: BaseException | None) -> None:
        self.closed = True
        self.pool.forget(self)
        response = self.response
        if response is not None:
            if response.status and not self._framed:  # a body delimited by the connection's end
                response.keep_alive = False
                response._done()
            response._fail(UpstreamConnectionError("the engine closed the connection"))

    # -- llhttp's callbacks ---------------------------------------------------------------
    def on_message_begin(self) -> None:
        response = self.response
        if response is not None and response.complete:  # a second answer to one request: nobody's
            response.keep_alive = False  # its connection is not reused
            self.response = None  # what follows feeds no response
            self.close()

    def on_header(self, name: bytes, value: bytes) -> None:
        if self.response is None or self.response.status:  # a chunked body's trailer: no header of ours
            return
        name = name.lower()
        if name == b"content-type":
            self.response.content_type = value.split(b";", 1)[0].strip().decode("latin-1").lower()
        elif name in (b"content-length", b"transfer-encoding"):
            self._framed = True

    def on_headers_complete(self) -> None:
        if self.response is not None:
            status = self.parser.get_status_code()
            if 100 <= status < 200 and status != 101:  # interim (100 Continue, 103 Early Hints): the final one follows
                self._interim = True
                return
            self.response._headers(status, self.parser.should_keep_alive())

    def on_body(self, body: bytes) -> None:
        if self.response is not None:
            self.response._feed(body)

    def on_message_complete(self) -> None:
        if self._interim:  # what its headers said is not the final answer's
            self._interim, self._framed = False, False
            if self.response is not None:
                self.response.content_type = ""
            return
        if self.response is not None:
            self.response._done()

    # -- the pool's side ----------------------------------------------------------------
    def send(self, data: bytes) -> Response:
        assert self.transport is not None
        self.response = Response(self)
        # the parser made with the connection is kept: a connection is reused only after a
        # complete keep-alive response, where llhttp waits for the next message anyway (a new
        # parser per request cost about 4% of the gateway's CPU, py-spy)
        self._framed = False
        self.transport.write(data)
        return self.response

    def pause(self) -> None:
        if not self._paused and self.transport is not None and not self.closed:
            self._paused = True
            self.transport.pause_reading()

    def resume(self) -> None:
        if self._paused and self.transport is not None and not self.closed:
            self._paused = False
            self.transport.resume_reading()

    def idle(self) -> None:
        self.response = None
        self.idle_since = self.loop.time()
        self.resume()
        self.pool.put_back(self)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.pool.forget(self)
            if self.transport is not None:
                self.transport.close()


class H1Pool:
    """Keep-alive connections per engine origin; ``post`` sends and returns the response."""

    def __init__(self) -> None:
        self._idle: dict[Origin, deque[_Connection]] = {}
        self._targets: dict[str, Target] = {}
        self._tls: ssl.SSLContext | None = None

    def target(self, url: str) -> Target:
        target = self._targets.get(url)
        if target is None:
            if len(self._targets) > 4096:  # endpoints come and go: stay bounded
                self._targets.clear()
            target = self._targets[url] = Target.of(url)
        return target

    def _take(self, origin: Origin) -> _Connection | None:
        idle = self._idle.get(origin)
        while idle:
            conn = idle.pop()
            if conn.closed or conn.transport is None or conn.transport.is_closing():
                continue
            if conn.loop.time() - conn.idle_since > KEEPALIVE_S:
                conn.close()  # the engine may be gone without a word (no FIN): do not bet a request on it
                continue
            return conn
        return None

    async def _connect(self, origin: Origin, timeout: float) -> _Connection:
        loop = asyncio.get_running_loop()
        host, port, use_tls = origin
        tls: Any = None
        if use_tls:
            self._tls = self._tls or ssl.create_default_context()
            tls = self._tls
        try:
            async with asyncio.timeout(timeout):
                _, conn = await loop.create_connection(lambda: _Connection(self, origin, loop), host, port, ssl=tls)
        except OSError as exc:
            raise UpstreamConnectionError(f"cannot connect: {exc.strerror or type(exc).__name__}") from exc
        return conn

    @staticmethod
    def _head(target: Target, body: bytes, headers: dict[str, str]) -> bytes:
        lines = [b"POST %s HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\n" % (target.path, target.host_header, len(body))]
        for name, value in headers.items():
            if "\r" not in value and "\n" not in value:
                lines.append(f"{name}: {value}\r\n".encode("latin-1", "replace"))
        lines.append(b"\r\n")
        return b"".join(lines)

    async def post(self, url: str, body: bytes, headers: dict[str, str], *, connect_timeout: float) -> Response:
        """Send a POST to *url*; return once the response's headers are in."""
        target = self.target(url)
        data = self._head(target, body, headers) + body
        conn = self._take(target.origin)
        if conn is not None:
            response = conn.send(data)
            try:
                await response._started  # the status line and headers are in
                return response
            except UpstreamConnectionError:
                conn.close()  # the engine closed this idle connection as we reused it: once more, new
            except BaseException:
                conn.close()
                raise
        conn = await self._connect(target.origin, connect_timeout)
        response = conn.send(data)
        try:
            await response._started
        except BaseException:
            conn.close()
            raise
        return response

    def put_back(self, conn: _Connection) -> None:
        idle = self._idle.setdefault(conn.origin, deque())
        if len(idle) >= _MAX_IDLE or conn.closed:
            conn.close()
            return
        idle.append(conn)

    def forget(self, conn: _Connection) -> None:
        idle = self._idle.get(conn.origin)
        if idle and conn in idle:
            idle.remove(conn)

    def close(self) -> None:
        for idle in list(self._idle.values()):
            for conn in list(idle):
                conn.close()
        self._idle.clear()
