"""A lean HTTP/1.1 server for the gateway's routes (``kubellm gateway --server fast``).

aiohttp's server side costs the gateway about a quarter of its CPU per request
(``bench/proxy_floor.py``, docs/gateway.md). Here: an ``asyncio.Protocol`` per connection,
requests parsed by llhttp (``httptools``; Content-Length and chunked bodies), serving the
routes, middlewares and ``on_startup``/``on_response_prepare``/``on_cleanup`` signals of the
gateway's ``aiohttp.web.Application`` unchanged. Handlers see :class:`FastRequest`, the
subset of ``aiohttp.web.Request`` the gateway uses (``method``, ``path``, ``query``,
``headers``, ``read()``), and return an ``aiohttp.web.Response`` (written here with a
Content-Length), the :class:`Answer` that :func:`answer` already wrote, or the
:class:`FastStream` that :func:`start_stream` opened.

Behaviour: keep-alive (HTTP/1.1 default, HTTP/1.0 on request), an idle connection closed
after ``keepalive_s`` (75 s, as aiohttp's); pipelined requests answered one at a time in order
(reading pauses while ``_MAX_PIPELINED`` wait, or while their bodies hold more than
``max_body_bytes``); a body over ``max_body_bytes`` (declared or received) is answered through
the handler as aiohttp does (``read()`` raises ``HTTPRequestEntityTooLarge``, the gateway
answers 413) and the connection closes;
``Expect: 100-continue`` gets its interim response on HTTP/1.1 when no earlier answer is due
and the declared body is not too large; a malformed request gets 400, a request line and
headers over 64 KiB (one endless header included) 431, ``CONNECT`` 405, an ``Upgrade`` request
with a chunked body 400, each after the earlier pipelined answers, and the connection closes;
an ``Upgrade`` (``curl --http2``'s h2c) is otherwise ignored and answered as HTTP/1.1; trailer
fields of a chunked body are dropped (never request headers); a client that disconnects
cancels its request's task (the engine request is aborted, as with aiohttp's
``handler_cancellation``); a streamed response is chunked (HTTP/1.0: unframed, then close) and
its writes wait while the client's socket buffer is full (backpressure); anything but that
stream after it opened (an error) cuts it short and closes, as does an exception while
answering. The idle time counts from the last data in or answer out. No ``Date``/``Server``
headers, no compression, no TLS (the gateway's aiohttp site had none).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from functools import partial
from http import HTTPStatus
from typing import Any, cast
from urllib.parse import parse_qsl

import httptools
import orjson
from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy, MultiDict, MultiDictProxy

log = logging.getLogger("kubellm.gateway")

Handler = Callable[[Any], Awaitable[web.StreamResponse]]
_MAX_PIPELINED = 16  # requests parsed ahead of the one being answered; reading pauses beyond
_HIGH_WATER = 64 * 1024  # bytes the transport buffers before a streamed write waits
_MAX_HEAD = 64 * 1024  # request line and headers; more is refused with 431 (aiohttp: 8 KiB a line)
KEEPALIVE_S = 75.0  # an idle kept-alive connection is closed after this (aiohttp's keepalive_timeout)
_OWN_HEADERS = frozenset({"content-length", "transfer-encoding", "connection"})


class _HeadTooLarge(Exception):
    """The request line and headers are over :data:`_MAX_HEAD` bytes."""


class _Refused(Exception):
    """A request the server answers itself, then closes (raised in a parser callback)."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.status, self.reason, self.message = status, reason, message


class FastRequest:
    """One parsed request: what the gateway's handlers read of ``aiohttp.web.Request``."""

    __slots__ = ("method", "path", "query_string", "headers", "version", "keep_alive", "_body", "_too_large",
                 "_conn", "_query", "_stream", "__weakref__")

    def __init__(self, conn: _Connection, method: str, target: str, headers: CIMultiDict[str],
                 version: str, keep_alive: bool) -> None:
        self._conn = conn
        self.method = method
        path, _, self.query_string = target.partition("?")
        self.path = path
        self.headers: CIMultiDictProxy[str] = CIMultiDictProxy(headers)
        self.version = version
        self.keep_alive = keep_alive
        self._body: list[bytes] = []
        self._too_large = 0  # the body's size once over the limit (declared or received)
        self._query: MultiDictProxy[str] | None = None
        self._stream: FastStream | Answer | None = None  # the response once its head is written

    @property
    def query(self) -> MultiDictProxy[str]:
        if self._query is None:
            self._query = MultiDictProxy(MultiDict(parse_qsl(self.query_string, keep_blank_values=True)))
        return self._query

    async def read(self) -> bytes:
        """The whole body (already received); over the limit: ``HTTPRequestEntityTooLarge``."""
        if self._too_large:
            limit = self._conn.server.max_body_bytes
            raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=self._too_large)
        return b"".join(self._body)


class FastStream(web.StreamResponse):
    """A streamed response on the fast server: chunked, each write waits out backpressure.

    A ``web.StreamResponse`` for the type checker and the ``on_response_prepare`` hooks (they
    read ``headers`` and call ``force_close()``); only ``write`` and ``write_eof`` are used."""

    def __init__(self, request: FastRequest, status: int, headers: dict[str, str]) -> None:
        super().__init__(status=status, headers=headers)
        self._request = request

    async def open(self) -> None:
        request = self._request
        for hook in request._conn.server.prepare_hooks:
            await hook(cast(web.Request, request), self)
        self._framed = request.version != "1.0"  # HTTP/1.0: the body ends when the connection closes
        if not self._framed:
            request.keep_alive = False
        request._conn.write_head(request, self.status, self.reason, self.headers, None,
                                 request.keep_alive and self.keep_alive is not False)
        request._stream = self

    async def write(self, data: bytes | bytearray | memoryview) -> None:
        if data:
            await self._request._conn.write_body(b"%x\r\n%s\r\n" % (len(data), bytes(data)) if self._framed
                                                 else bytes(data))

    async def write_eof(self, data: bytes = b"") -> None:
        await self.write(data)
        if self._framed:
            await self._request._conn.write_body(b"0\r\n\r\n")


class Answer:
    """A complete response on the fast server, written as soon as it is made (:func:`answer`):
    what :meth:`_Connection._answer` and the ``on_response_prepare`` hooks read of a
    ``web.Response`` (``status``, ``reason``, ``headers``, ``body``, ``keep_alive``,
    ``force_close()``), without its construction (headers multidict, content-type parsing,
    body checks: about 2% of a proxied request)."""

    __slots__ = ("status", "reason", "headers", "body", "keep_alive")

    def __init__(self, status: int, body: bytes, content_type: str) -> None:
        self.status = status
        self.reason = _REASONS.get(status, "")
        self.headers = {"Content-Type": content_type}
        self.body = body
        self.keep_alive: bool | None = None

    def force_close(self) -> None:
        self.keep_alive = False


# as aiohttp's web.Response: the standard phrase, else empty (an engine, or a proxy beside it,
# may answer a status the list lacks: nginx's 499, a CDN's 52x; HTTPStatus(status) raises there)
_REASONS = {s.value: s.phrase for s in HTTPStatus}


def _body_size(request: FastRequest | _Refused) -> int:
    return sum(map(len, request._body)) if isinstance(request, FastRequest) else 0


def _connection_header(request: FastRequest, keep: bool) -> bytes:
    """``Connection: close`` when the connection ends after this answer; ``keep-alive`` to an
    HTTP/1.0 client that asked for it (its default is close); else none (HTTP/1.1's default)."""
    if not keep:
        return b"Connection: close\r\n"
    return b"Connection: keep-alive\r\n" if request.version == "1.0" else b""


async def answer(request: Any, status: int, body: bytes, content_type: str) -> web.StreamResponse:
    """A complete response for whichever server *request* came from. On the fast server it is
    written now, before the handler returns: what the handler does after (accounting, metrics,
    the latency learner) no longer delays the client. As a stream, anything but this answer
    returned (an error raised after it) closes the connection."""
    if not isinstance(request, FastRequest):
        return web.Response(body=body, status=status, content_type=content_type)
    done = Answer(status, body, content_type)
    conn = request._conn
    for hook in conn.server.prepare_hooks:
        await hook(cast(web.Request, request), cast(web.StreamResponse, done))
    request.keep_alive = request.keep_alive and done.keep_alive is not False
    conn.write_head(request, status, done.reason, done.headers, body, request.keep_alive)
    request._stream = done
    return cast(web.StreamResponse, done)


async def start_stream(request: Any, status: int, headers: dict[str, str]) -> web.StreamResponse:
    """Open a streamed response on whichever server *request* came from."""
    if isinstance(request, FastRequest):
        stream = FastStream(request, status, headers)
        await stream.open()
        return stream
    response = web.StreamResponse(status=status, headers=headers)
    await response.prepare(request)
    return response


class _Connection(asyncio.Protocol):
    """One client connection: parse, queue, answer in order, close when asked."""

    def __init__(self, server: FastServer) -> None:
        self.server = server
        self.loop = asyncio.get_running_loop()
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.pending: deque[FastRequest | _Refused] = deque()  # answered in order; a refusal last
        self.task: asyncio.Task[None] | None = None
        self.request: FastRequest | None = None  # the one being parsed
        self._url = b""
        self._headers: CIMultiDict[str] = CIMultiDict()
        self._ignoring = False  # after a bad or oversized request: read nothing more
        self._read_paused = False
        self._pending_bytes = 0  # body bytes of the requests in ``pending``
        self._drain: asyncio.Future[None] | None = None
        self._paused = False
        self._head_bytes = 0  # the head's URL and complete headers (callbacks)
        self._head_raw = 0  # bytes received while the head is unfinished (data_received)
        self._in_head = False  # between on_message_begin and on_headers_complete
        self._body_bytes = 0
        self._raw_left = 0  # body bytes of an Upgrade request still to come (llhttp does not parse them)
        self.lost = False
        self.active = self.loop.time()  # last data in or answer out; the sweep closes long-idle connections

    # -- transport events ------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.transport.set_write_buffer_limits(high=_HIGH_WATER)  # type: ignore[union-attr]
        self.server.connections.add(self)

    def data_received(self, data: bytes) -> None:
        self.active = self.loop.time()
        while data and not self._ignoring:
            data = self._upgrade_body(data) if self._raw_left else self._feed(data)

    def _feed(self, data: bytes) -> bytes:
        """Parse *data*; returns what follows an ``Upgrade`` request (parsed as HTTP/1.1 again)."""
        if self._in_head:  # llhttp keeps a header's name and value until their end: count them here
            self._head_raw += len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade as exc:  # not an HttpParserError: the request is served, the
            self.parser = httptools.HttpRequestParser(self)  # upgrade ignored (as aiohttp does for h2c)
            return data[exc.args[0]:]
        except httptools.HttpParserError as exc:  # a callback's exception arrives wrapped in one
            cause = exc.__context__  # httptools chains the callback's exception implicitly
            if isinstance(cause, _Refused):
                self._refuse(cause.status, cause.reason, cause.message)
            elif self._head_bytes > _MAX_HEAD:
                self._refuse_head()
            else:
                self._refuse(400, "Bad Request", f"malformed HTTP request: {exc or 'unparseable'}")
            return b""
        if self._in_head and self._head_raw > _MAX_HEAD:  # a head still unfinished at the end of data
            self._refuse_head()
        return b""

    def _refuse_head(self) -> None:
        self._refuse(431, "Request Header Fields Too Large", f"the request line and headers are over {_MAX_HEAD} bytes")

    def idle(self) -> bool:
        return self.task is None and not self.pending

    def connection_lost(self, exc: BaseException | None) -> None:
        self.lost = True
        self.server.connections.discard(self)
        self.pending.clear()
        if self.task is not None and not self.task.done():
            self.task.cancel()  # the client went away: its request (and the engine's) ends
        self._wake(ConnectionResetError("the client closed the connection"))

    def pause_writing(self) -> None:
        self._paused = True

    def resume_writing(self) -> None:
        self._paused = False
        self._wake(None)

    def _wake(self, exc: BaseException | None) -> None:
        waiter, self._drain = self._drain, None
        if waiter is not None and not waiter.done():
            if exc is None:
                waiter.set_result(None)
            else:
                waiter.set_exception(exc)

    # -- llhttp callbacks ------------------------------------------------------------------
    def on_message_begin(self) -> None:
        self._url = b""
        self._headers = CIMultiDict()
        self._head_bytes = self._body_bytes = self._head_raw = 0
        self._in_head = True

    # on_url and on_header count the head's bytes inline (called per header: no helper call);
    # over _MAX_HEAD, _HeadTooLarge stops the parser: feed_data raises, data_received answers 431
    def on_url(self, url: bytes) -> None:
        self._head_bytes += len(url)
        if self._head_bytes > _MAX_HEAD:
            raise _HeadTooLarge
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        if not self._in_head:  # a chunked body's trailer: never a request header (they could smuggle
            return  # Authorization or forwarded headers past an ingress that filters the head)
        self._head_bytes += len(name) + len(value)
        if self._head_bytes > _MAX_HEAD:
            raise _HeadTooLarge
        self._headers.add(name.decode("latin-1"), value.decode("latin-1"))

    def on_headers_complete(self) -> None:
        self._in_head = False
        p = self.parser
        upgrade = p.should_upgrade()
        if upgrade:
            self._check_upgrade(p.get_method(), self._headers)
        request = self.request = FastRequest(self, p.get_method().decode("ascii"), self._url.decode("latin-1"),
                                             self._headers, p.get_http_version(), p.should_keep_alive())
        declared = request.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > self.server.max_body_bytes:
            self._oversized(request, int(declared))
            return
        if upgrade and declared.isdigit():
            self._raw_left = int(declared)  # llhttp stops after the head: _upgrade_body reads the body
        if request.headers.get("Expect", "").lower() == "100-continue" and self._may_continue(request):
            self._write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def _may_continue(self, request: FastRequest) -> bool:
        """An interim response only to HTTP/1.1 and when no earlier answer is due (it would land
        inside or ahead of one; the client sends its body after a timeout anyway)."""
        return request.version == "1.1" and self.task is None and not self.pending

    @staticmethod
    def _check_upgrade(method: bytes, headers: CIMultiDict[str]) -> None:
        """``CONNECT`` is refused (no tunnels here), as is an upgrade with a chunked body: llhttp
        stops after an upgrade request's head, and only a Content-Length body is read past it."""
        if method == b"CONNECT":
            raise _Refused(405, "Method Not Allowed", "CONNECT is not supported")
        if "Transfer-Encoding" in headers:
            raise _Refused(400, "Bad Request", "a request with Upgrade and a chunked body is not supported; send "
                                               "it without the Upgrade header or with a Content-Length")

    def _upgrade_body(self, data: bytes) -> bytes:
        """The Content-Length body of an ``Upgrade`` request (which llhttp leaves unparsed); returns
        what follows it."""
        body = data[:self._raw_left]
        self._raw_left -= len(body)
        self.on_body(body)
        if not self._raw_left:
            self.on_message_complete()
        return data[len(body):]

    def on_body(self, body: bytes) -> None:
        request = self.request
        if request is None or request._too_large:
            return
        request._body.append(body)
        self._body_bytes += len(body)
        if self._body_bytes > self.server.max_body_bytes:
            self._oversized(request, self._body_bytes)

    def on_message_complete(self) -> None:
        if self._raw_left:  # an upgrade request: its body follows (_upgrade_body completes it)
            return
        request, self.request = self.request, None
        if request is not None and not request._too_large:
            self._enqueue(request)

    # -- requests in, responses out ------------------------------------------------------------
    def _oversized(self, request: FastRequest, size: int) -> None:
        """Answer through the handler now (its read() raises 413), then close: the rest of the
        body is never read."""
        request._too_large, request._body, request.keep_alive = size, [], False
        self._ignoring = True
        self._enqueue(request)

    def _refuse(self, status: int, reason: str, message: str) -> None:
        """A request that cannot be parsed: read nothing more; after the earlier requests' answers,
        the OpenAI error object, then close."""
        self._ignoring = True
        self._enqueue(_Refused(status, reason, message))

    def _write_refusal(self, refusal: _Refused) -> None:
        body = orjson.dumps({"error": {"message": refusal.message, "type": "invalid_request_error", "param": None,
                                       "code": None}})
        self._write(b"HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
                    b"Connection: close\r\n\r\n%s" % (refusal.status, refusal.reason.encode(), len(body), body))
        self._close()

    def _enqueue(self, request: FastRequest | _Refused) -> None:
        self.pending.append(request)
        self._pending_bytes += _body_size(request)
        if self.task is None:
            self.task = self.loop.create_task(self._serve())
        elif self._backlogged() and not self._read_paused and self.transport is not None:
            self._read_paused = True
            self.transport.pause_reading()

    def _backlogged(self) -> bool:
        """Too much parsed ahead of the answer being written: reading pauses (a client pipelining
        large bodies would otherwise hold up to ``_MAX_PIPELINED`` of them each)."""
        return len(self.pending) >= _MAX_PIPELINED or self._pending_bytes > self.server.max_body_bytes

    async def _serve(self) -> None:
        try:
            while self.pending and not self.lost:
                request = self.pending.popleft()
                self._pending_bytes -= _body_size(request)
                if isinstance(request, _Refused):
                    self._write_refusal(request)
                    return
                if self._read_paused and self.transport is not None and not self._backlogged():
                    self._read_paused = False
                    self.transport.resume_reading()
                keep = await self._answer(request)
                self.active = self.loop.time()  # the idle time counts from the answer's end too
                if not keep:
                    self._close()
                    return
        except Exception:  # e.g. an on_response_prepare hook raising: the connection cannot go on
            log.exception("serving a connection failed: closing it")
            self.pending.clear()
            self._close()
        finally:
            self.task = None

    async def _answer(self, request: FastRequest) -> bool:
        """Run the handler and write its response; False: close the connection."""
        try:
            response = await self.server.dispatch(request)
        except asyncio.CancelledError:
            raise
        except web.HTTPException as exc:  # raised past the middlewares: the response it is (as aiohttp)
            response = exc
        except Exception:
            log.exception("unexpected error serving %s %s", request.method, request.path)
            response = web.Response(status=500, text="internal server error")
        stream = request._stream
        if stream is not None:
            if response is stream:
                return request.keep_alive and stream.keep_alive is not False
            log.error("%s %s ended in %s after its stream opened: closing the connection (the body is cut short)",
                      request.method, request.path, type(response).__name__)
            return False
        if not isinstance(response, web.Response):
            log.error("handler for %s returned %r, not a web.Response", request.path, type(response).__name__)
            response = web.Response(status=500, text="internal server error")
        for hook in self.server.prepare_hooks:  # on_response_prepare's receivers, without Signal.send's coroutine
            await hook(cast(web.Request, request), response)
        keep = request.keep_alive and response.keep_alive is not False
        body = response.body if isinstance(response.body, bytes) else b""
        self.write_head(request, response.status, response.reason, response.headers, body, keep)
        return keep

    def write_head(self, request: FastRequest, status: int, reason: str, headers: Mapping[str, str],
                   body: bytes | None, keep: bool) -> None:
        """The status line and headers, and *body* if complete (else chunked follows)."""
        if body is not None and len(headers) == 1 and (ctype := headers.get("Content-Type")) is not None:
            # the usual complete answer, only a Content-Type: the head in one format (no loop)
            self._write(b"HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n%s\r\n%s" % (
                status, reason.encode("latin-1", "replace"), ctype.encode("latin-1", "replace"), len(body),
                _connection_header(request, keep), b"" if request.method == "HEAD" else body))
            return
        lines = [b"HTTP/1.1 %d %s\r\n" % (status, reason.encode("latin-1", "replace"))]
        items: Iterable[tuple[str, str]] = headers.items()
        if isinstance(headers, dict):  # an Answer's: a name set again in another case replaces it, as in a multidict
            items = {name.lower(): (name, value) for name, value in items}.values()
        for name, value in items:
            if name.lower() not in _OWN_HEADERS:
                lines.append(f"{name}: {value}\r\n".encode("latin-1", "replace"))
        if body is None:
            if request.version != "1.0":
                lines.append(b"Transfer-Encoding: chunked\r\n")
        else:
            lines.append(b"Content-Length: %d\r\n" % len(body))
        lines.append(_connection_header(request, keep))
        lines.append(b"\r\n")
        if body and request.method != "HEAD":
            lines.append(body)
        self._write(b"".join(lines))

    async def write_body(self, data: bytes) -> None:
        if self.lost or self.transport is None or self.transport.is_closing():
            raise ConnectionResetError("the client closed the connection")
        self.transport.write(data)
        if self._paused:
            self._drain = self.loop.create_future()
            await self._drain

    def _write(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def _close(self) -> None:
        if self.transport is not None:
            self.transport.close()


class FastServer:
    """Serves a gateway's ``web.Application`` on :class:`_Connection` protocols."""

    def __init__(self, app: web.Application, *, max_body_bytes: int, keepalive_s: float = KEEPALIVE_S) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.keepalive_s = keepalive_s
        self.connections: set[_Connection] = set()
        self._sweeper: asyncio.Task[None] | None = None
        self._servers: list[asyncio.AbstractServer] = []  # TCP
        self._unix: list[asyncio.AbstractServer] = []
        self._routes: dict[tuple[str, str], Handler] = {}
        self._paths: dict[str, list[str]] = {}
        self.prepare_hooks = tuple(app.on_response_prepare)  # final once startup() froze the app
        for route in app.router.routes():
            path = route.resource.canonical if route.resource is not None else ""
            self._routes.setdefault((route.method, path), self._wrap(route.handler))  # add_get adds HEAD itself
            self._paths.setdefault(path, []).append(route.method)

    def _wrap(self, handler: Handler) -> Handler:
        for middleware in reversed(self.app.middlewares):
            handler = partial(middleware, handler=handler)
        return handler

    def dispatch(self, request: FastRequest) -> Awaitable[web.StreamResponse]:
        """The handler's coroutine for *request* (404 and 405 raised through the middlewares)."""
        handler = self._routes.get((request.method, request.path))
        if handler is None:
            allowed = self._paths.get(request.path)
            error: web.HTTPException = (web.HTTPNotFound() if allowed is None else
                                        web.HTTPMethodNotAllowed(request.method, allowed))
            handler = self._wrap(partial(_raise, error))
        return handler(request)

    # -- lifecycle ------------------------------------------------------------------------------
    async def startup(self) -> None:
        self.app.freeze()
        self.prepare_hooks = tuple(self.app.on_response_prepare)
        await self.app.startup()
        self._sweeper = asyncio.ensure_future(self._sweep())

    async def _sweep(self) -> None:
        """Close kept-alive connections idle for ``keepalive_s`` (one pass every quarter of it;
        nothing per request)."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.keepalive_s / 4)
            cutoff = loop.time() - self.keepalive_s
            for conn in [c for c in self.connections if c.idle() and c.active < cutoff]:
                conn._close()

    async def listen(self, host: str, port: int, *, reuse_port: bool = False, backlog: int = 1024) -> int:
        """Start accepting on *host*:*port*; returns the bound port."""
        server = await asyncio.get_running_loop().create_server(
            lambda: _Connection(self), host, port, backlog=backlog, reuse_port=reuse_port or None)
        self._servers.append(server)
        return int(server.sockets[0].getsockname()[1])

    async def listen_unix(self, path: str) -> None:
        """Also accept on a Unix socket (``--workers``: where the other workers scrape this one's
        metrics); :meth:`stop_listening` leaves it open, so a worker draining alone stays in
        its peers' merged ``/metrics`` until it exits, as on aiohttp's server."""
        self._unix.append(await asyncio.get_running_loop().create_unix_server(lambda: _Connection(self), path))

    async def stop_listening(self) -> None:
        """Stop accepting on the TCP ports (drain); the Unix sockets close with :meth:`cleanup`."""
        for server in self._servers:
            server.close()
        self._servers.clear()

    async def cleanup(self, grace_s: float = 1.0) -> None:
        """Stop accepting, give requests in flight up to *grace_s*, close every connection, and
        run the application's shutdown and cleanup hooks."""
        await self.stop_listening()
        for server in self._unix:
            server.close()
        self._unix.clear()
        if self._sweeper is not None:
            self._sweeper.cancel()
        running = [c.task for c in self.connections if c.task is not None]
        if running:
            await asyncio.wait(running, timeout=grace_s)
        for conn in list(self.connections):
            conn._close()
        await self.app.shutdown()
        await self.app.cleanup()


async def _raise(error: web.HTTPException, request: FastRequest) -> web.StreamResponse:
    raise error
