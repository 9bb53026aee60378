"""The gateway's HTTP/1.1 client (gateway/h1.py) against real servers on loopback sockets:
framing, keep-alive reuse, the keep-alive race, cut responses, backpressure, header safety."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from kubellm.gateway import h1
from kubellm.gateway.h1 import HIGH_WATER, H1Pool, UpstreamConnectionError

Reply = Callable[[bytes, asyncio.StreamWriter], Any]


class Server:
    """A raw HTTP server: reads one request head and body, then lets *reply* answer."""

    def __init__(self, reply: Reply) -> None:
        self.reply = reply
        self.connections = 0
        self.requests: list[bytes] = []
        self.writers: list[asyncio.StreamWriter] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.writers.append(writer)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                                  if line.lower().startswith(b"content-length")))
                self.requests.append(head + await reader.readexactly(length))
                if await self.reply(head, writer) is False:
                    writer.close()
                    return
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[Reply], Any]]:
    servers: list[asyncio.Server] = []

    async def start(reply: Reply) -> tuple[Server, str]:
        state = Server(reply)
        server = await asyncio.start_server(state.handle, "127.0.0.1", 0)
        servers.append(server)
        return state, f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"

    yield start
    for s in servers:
        s.close()


def answering(raw: bytes) -> Reply:
    """A reply that writes *raw* as it is, whatever the request."""
    async def reply(head: bytes, w: asyncio.StreamWriter) -> None:
        w.write(raw)
        await w.drain()
    return reply


def _answer(body: bytes, status: str = "200 OK") -> bytes:
    return b"HTTP/1.1 %s\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: %d\r\n\r\n%s" % (
        status.encode(), len(body), body)


async def test_keep_alive_reuses_one_connection_and_reads_both_framings(serve: Any):
    async def reply(head: bytes, w: asyncio.StreamWriter) -> None:
        if b"/chunked" in head:
            w.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
                    b"7\r\ndata: 1\r\n7\r\ndata: 2\r\n0\r\n\r\n")
        else:
            w.write(_answer(b'{"ok": true}'))
        await w.drain()

    state, url = await serve(reply)
    pool = H1Pool()
    for path in ("/v1/completions", "/chunked", "/v1/completions"):
        resp = await pool.post(url + path, b'{"a": 1}', {"Content-Type": "application/json"}, connect_timeout=2)
        body = await resp.read()
        resp.release()
        assert resp.status == 200
        assert body == (b"data: 1data: 2" if path == "/chunked" else b'{"ok": true}')
        assert resp.content_type == ("text/event-stream" if path == "/chunked" else "application/json")
    assert state.connections == 1
    assert state.requests[0].startswith(b"POST /v1/completions HTTP/1.1\r\n")
    assert state.requests[0].endswith(b'\r\n\r\n{"a": 1}')
    pool.close()


async def test_an_idle_connection_the_engine_closed_is_replaced_transparently(serve: Any):
    async def reply(head: bytes, w: asyncio.StreamWriter) -> bool:
        w.write(_answer(b"{}"))
        await w.drain()
        return False  # close after each answer, as an engine's keep-alive timeout does

    state, url = await serve(reply)
    pool = H1Pool()
    for _ in range(3):
        resp = await pool.post(url + "/x", b"{}", {}, connect_timeout=2)
        assert await resp.read() == b"{}"
        resp.release()
        await asyncio.sleep(0.05)
    assert state.connections == 3
    pool.close()


async def test_a_response_cut_mid_body_raises_and_is_not_reused(serve: Any):
    async def reply(head: bytes, w: asyncio.StreamWriter) -> bool:
        w.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly part")
        await w.drain()
        return False

    _, url = await serve(reply)
    pool = H1Pool()
    resp = await pool.post(url + "/x", b"{}", {}, connect_timeout=2)
    assert await resp.readany() == b"only part"
    with pytest.raises(UpstreamConnectionError):
        await resp.readany()
    resp.release()
    assert not pool._idle.get(("127.0.0.1", int(url.rsplit(":", 1)[1]), False))


async def test_a_body_delimited_by_the_connections_end_completes(serve: Any):
    async def reply(head: bytes, w: asyncio.StreamWriter) -> bool:
        w.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end")
        await w.drain()
        return False

    _, url = await serve(reply)
    pool = H1Pool()
    resp = await pool.post(url + "/x", b"{}", {}, connect_timeout=2)
    assert await resp.read() == b"until the end"


async def test_reading_pauses_while_the_caller_does_not_read(serve: Any):
    size, piece = 8 << 20, b"x" * 65536
    server_buffer: list[int] = []

    async def reply(head: bytes, w: asyncio.StreamWriter) -> None:
        w.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size)
        for _ in range(size // len(piece)):
            w.write(piece)
        await asyncio.sleep(0.5)  # the caller is not reading meanwhile
        server_buffer.append(w.transport.get_write_buffer_size())
        await w.drain()

    _, url = await serve(reply)
    pool = H1Pool()
    resp = await pool.post(url + "/x", b"{}", {}, connect_timeout=2)
    await asyncio.sleep(0.4)
    assert resp._buffered < HIGH_WATER + (1 << 20)  # held back, not the whole 8 MiB
    await asyncio.sleep(0.2)
    assert server_buffer and server_buffer[0] > 0  # the engine's writes wait on TCP
    assert len(await resp.read()) == size


async def test_header_values_with_line_breaks_are_never_sent(serve: Any):
    state, url = await serve(answering(_answer(b"{}")))
    pool = H1Pool()
    resp = await pool.post(url + "/x", b"{}", {"x-request-id": "a\r\nEvil: 1", "traceparent": "00-ok"},
                           connect_timeout=2)
    await resp.read()
    assert b"Evil" not in state.requests[0] and b"traceparent: 00-ok\r\n" in state.requests[0]


async def test_connection_refused_is_a_connection_error():
    pool = H1Pool()
    with pytest.raises(UpstreamConnectionError, match="cannot connect"):
        await pool.post("http://127.0.0.1:9/x", b"{}", {}, connect_timeout=2)


async def test_a_connection_idle_past_the_keepalive_is_not_reused(serve: Any, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(h1, "KEEPALIVE_S", 0.1)
    state, url = await serve(answering(_answer(b"{}")))
    pool = H1Pool()
    for pause in (0.0, 0.0, 0.3):  # the engine keeps the connection open, silently
        await asyncio.sleep(pause)
        resp = await pool.post(url + "/x", b"{}", {}, connect_timeout=2)
        await resp.read()
        resp.release()
    assert state.connections == 2  # reused once, then replaced after the idle time
    pool.close()


async def test_an_upgrade_answer_is_a_protocol_error_not_a_crash_in_the_protocol(serve: Any):
    """llhttp stops at a 101 (or Connection: upgrade) with HttpParserUpgrade, which is no
    HttpParserError: it must close the connection as for an invalid answer, not escape
    data_received (asyncio's 'Fatal error: protocol.data_received() call failed')."""
    _, url = await serve(answering(b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"))
    escaped: list[dict[str, Any]] = []
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(lambda _loop, ctx: escaped.append(ctx))
    pool = H1Pool()
    try:
        resp = await pool.post(url + "/x", b"{}", {}, connect_timeout=2)
        try:
            await asyncio.wait_for(resp.read(), 2)
        except UpstreamConnectionError:
            pass
        resp.release()
        await asyncio.sleep(0.05)
        assert escaped == []
        assert not pool._idle.get(("127.0.0.1", int(url.rsplit(":", 1)[1]), False))  # never reused
    finally:
        loop.set_exception_handler(None)
        pool.close()


async def test_a_chunked_trailer_changes_no_response_header(serve: Any):
    """Trailer fields after a chunked body come through llhttp's on_header too: they must not
    overwrite the response's Content-Type (nor its framing)."""
    _, url = await serve(answering(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
                                   b"Trailer: Content-Type\r\n\r\n2\r\n{}\r\n0\r\nContent-Type: text/html\r\n\r\n"))
    pool = H1Pool()
    resp = await pool.post(url + "/x", b"{}", {}, connect_timeout=2)
    assert await resp.read() == b"{}"
    assert resp.content_type == "application/json"
    resp.release()
    pool.close()


async def test_a_second_answer_to_one_request_is_dropped_with_its_connection(serve: Any):
    """Bytes after a complete answer, in the same read, are nobody's answer: they must not reach
    the response already read nor the next request sent on that connection."""
    _, url = await serve(answering(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfirst"
                                   b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nstray"))
    pool = H1Pool()
    try:
        resp = await pool.post(url + "/x", b"{}", {}, connect_timeout=2)
        assert await resp.read() == b"first"
        resp.release()
        assert not pool._idle.get(("127.0.0.1", int(url.rsplit(":", 1)[1]), False))  # never reused
        again = await pool.post(url + "/x", b"{}", {}, connect_timeout=2)
        assert await again.read() == b"first"  # a fresh connection's own answer, not the stray one
        again.release()
    finally:
        pool.close()


@pytest.mark.parametrize("interim", [b"HTTP/1.1 100 Continue\r\n\r\n",
                                     b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\nContent-Type: text/x-hint\r\n\r\n"
                                     b"HTTP/1.1 100 Continue\r\n\r\n"])
async def test_interim_answers_are_skipped_for_the_final_one(serve: Any, interim: bytes):
    """An engine (or a proxy before it) may send 1xx answers before the real one, asked for or
    not (RFC 9110 15.2: a client must parse them): the final answer's status, type and body are
    the response, and the connection is reused after it."""
    _, url = await serve(answering(interim + _answer(b'{"ok": true}')))
    pool = H1Pool()
    try:
        for _ in range(2):
            resp = await pool.post(url + "/x", b"{}", {}, connect_timeout=2)
            assert (resp.status, resp.content_type) == (200, "application/json")
            assert await resp.read() == b'{"ok": true}'
            resp.release()
        assert len(pool._idle[("127.0.0.1", int(url.rsplit(":", 1)[1]), False)]) == 1  # one connection, reused
    finally:
        pool.close()
