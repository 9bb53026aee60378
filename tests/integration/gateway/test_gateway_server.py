"""The fast HTTP/1.1 server (gateway/server.py) against raw sockets on loopback.

Two applications are served: the real gateway (``build_gateway``: its middleware, 413, error
JSON, drain hook; its one engine URL is unreachable, which no test here reaches) and a small
``web.Application`` whose handlers make the server's own behaviour visible (echo, ordering,
cancellation on disconnect, a large stream). Every byte goes through real TCP on loopback."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import openai
import pytest
import yaml
from aiohttp import web

from kubellm.gateway.app import GATEWAY, build_gateway
from kubellm.gateway.config import parse_config
from kubellm.gateway.server import FastServer, answer, start_stream
from tests import processes

MAX_BODY = 2048
CHUNK = 64 * 1024
KEEPALIVE_S = 0.4


@dataclass
class Seen:
    cancelled: asyncio.Event = field(default_factory=asyncio.Event)
    started: asyncio.Event = field(default_factory=asyncio.Event)
    written: int = 0  # stream chunks whose write() returned


def _toy_app(seen: Seen) -> web.Application:
    async def echo(request: web.Request) -> web.Response:
        return web.Response(body=await request.read(), content_type="application/octet-stream")

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(float(request.query.get("s", "0")))
        return web.Response(text=request.query.get("id", ""))

    async def hang(request: web.Request) -> web.Response:
        seen.started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            seen.cancelled.set()
            raise
        raise AssertionError("unreachable")

    async def big(request: web.Request) -> web.StreamResponse:
        out = await start_stream(request, 200, {"Content-Type": "application/octet-stream"})
        for _ in range(64):  # 4 MiB, far more than the socket buffers hold
            await out.write(b"x" * CHUNK)
            seen.written += 1
        await out.write_eof()
        return out

    async def stream_then_fail(request: web.Request) -> web.StreamResponse:
        out = await start_stream(request, 200, {"Content-Type": "text/event-stream"})
        await out.write(b"part")
        raise RuntimeError("the handler failed mid-stream")

    async def answered(request: web.Request) -> web.StreamResponse:
        return await answer(request, 200, await request.read(), "application/octet-stream")

    async def header_names(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(text=",".join(name.lower() for name in request.headers))

    app = web.Application()
    app.router.add_get("/stream-then-fail", stream_then_fail)
    app.router.add_post("/header-names", header_names)
    app.router.add_get("/prepare-fails", slow)
    app.on_response_prepare.append(_failing_prepare)
    app.router.add_post("/echo", echo)
    app.router.add_post("/answer", answered)
    app.router.add_post("/answer-retyped", answered)
    app.router.add_post("/answer-retyped-lower", answered)
    app.on_response_prepare.append(_retyping_prepare)
    app.router.add_get("/slow", slow)
    app.router.add_post("/hang", hang)
    app.router.add_get("/big", big)
    return app


async def _failing_prepare(request: web.Request, response: web.StreamResponse) -> None:
    if request.path == "/prepare-fails":
        raise RuntimeError("an on_response_prepare hook failed")


async def _retyping_prepare(request: web.Request, response: web.StreamResponse) -> None:
    if request.path == "/answer-retyped":
        response.headers["Content-Type"] = "text/plain; charset=utf-8"
    elif request.path == "/answer-retyped-lower":  # header names are case-insensitive, as in a web.Response's
        response.headers["content-type"] = "text/plain"
        response.headers["X-Hook"] = "1"


async def _serve(app: web.Application, max_body: int = MAX_BODY) -> AsyncIterator[int]:
    server = FastServer(app, max_body_bytes=max_body, keepalive_s=KEEPALIVE_S)
    await server.startup()
    port = await server.listen("127.0.0.1", 0)
    try:
        yield port
    finally:
        await server.cleanup(0.5)


@pytest.fixture
def seen() -> Seen:
    return Seen()


@pytest.fixture
async def toy(seen: Seen) -> AsyncIterator[int]:
    async for port in _serve(_toy_app(seen)):
        yield port


@pytest.fixture
async def gateway() -> AsyncIterator[tuple[int, web.Application]]:
    app = build_gateway(parse_config({"models": [{"name": "m", "endpoints": ["http://127.0.0.1:9"]}],
                                      "maxBodyBytes": 4096}))
    async for port in _serve(app, app[GATEWAY].config.max_body_bytes):
        yield port, app


async def _response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    """One response off the wire: status, headers (lower-case; a repeated one's values joined by
    ", ", as HTTP reads it), body (Content-Length or chunked)."""
    head = (await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)).decode("latin-1").split("\r\n")
    status = int(head[0].split()[1])
    headers: dict[str, str] = {}
    for name, _, value in (line.partition(":") for line in head[1:] if line):
        key = name.lower()
        headers[key] = f"{headers[key]}, {value.strip()}" if key in headers else value.strip()
    if "content-length" in headers:
        return status, headers, await reader.readexactly(int(headers["content-length"]))
    body = b""
    while size := int((await reader.readline()).strip(), 16):
        body += await reader.readexactly(size)
        await reader.readexactly(2)
    await reader.readexactly(2)
    return status, headers, body


async def _connect(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", port)


def _post(path: str, body: bytes, extra: str = "") -> bytes:
    return f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n{extra}\r\n".encode() + body


async def test_keep_alive_serves_many_requests_on_one_connection(toy: int) -> None:
    reader, writer = await _connect(toy)
    for i in range(3):
        writer.write(_post("/echo", b"hello %d" % i))
        status, headers, body = await _response(reader)
        assert (status, body) == (200, b"hello %d" % i)
        assert "close" not in headers.get("connection", "")
    writer.close()


async def test_pipelined_requests_are_answered_in_order(toy: int) -> None:
    """The first request takes longest; its answer still comes first."""
    reader, writer = await _connect(toy)
    writer.write(b"".join(f"GET /slow?s={s}&id={i} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
                          for i, s in enumerate(("0.2", "0", "0.05"))))
    bodies = [(await _response(reader))[2] for _ in range(3)]
    assert bodies == [b"0", b"1", b"2"]
    writer.close()


async def test_chunked_request_body_is_decoded(toy: int) -> None:
    reader, writer = await _connect(toy)
    writer.write(b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                 b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
    assert (await _response(reader))[::2] == (200, b"hello world")
    writer.close()


async def test_expect_100_continue_gets_the_interim_response(toy: int) -> None:
    reader, writer = await _connect(toy)
    writer.write(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n")
    assert await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10) == b"HTTP/1.1 100 Continue\r\n\r\n"
    writer.write(b"body")
    assert (await _response(reader))[::2] == (200, b"body")
    writer.close()


async def test_malformed_request_gets_400_and_the_connection_closes(toy: int) -> None:
    reader, writer = await _connect(toy)
    writer.write(b"NOT AN HTTP REQUEST\x00\r\n\r\n")
    status, headers, body = await _response(reader)
    assert status == 400 and headers["connection"] == "close" and b"malformed" in body
    assert await asyncio.wait_for(reader.read(), 10) == b""
    writer.close()


async def test_oversized_headers_get_431_and_the_connection_closes(toy: int) -> None:
    reader, writer = await _connect(toy)
    writer.write(b"GET /slow HTTP/1.1\r\nHost: x\r\n" + b"X-Big: " + b"a" * 70_000 + b"\r\n\r\n")
    status, headers, body = await _response(reader)
    assert status == 431 and headers["connection"] == "close" and b'"error"' in body
    assert await asyncio.wait_for(reader.read(), 10) == b""
    writer.close()


async def test_an_idle_kept_alive_connection_is_closed(toy: int) -> None:
    """Idle for longer than keepalive_s (0.4 s here; 75 s by default, as aiohttp's): closed."""
    reader, writer = await _connect(toy)
    writer.write(b"GET /slow?id=a HTTP/1.1\r\nHost: x\r\n\r\n")
    assert (await _response(reader))[2] == b"a"
    assert await asyncio.wait_for(reader.read(), 5) == b""  # EOF: the server closed it
    writer.close()


async def test_client_disconnect_cancels_the_handler(toy: int, seen: Seen) -> None:
    _, writer = await _connect(toy)
    writer.write(_post("/hang", b"{}"))
    await asyncio.wait_for(seen.started.wait(), 10)
    writer.close()
    await asyncio.wait_for(seen.cancelled.wait(), 10)


async def test_stream_waits_for_a_slow_client_then_delivers_everything(toy: int, seen: Seen) -> None:
    """Backpressure: while the client reads nothing, the handler's writes stop returning."""
    reader, writer = await _connect(toy)
    writer.write(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
    await asyncio.sleep(0.5)
    assert 0 < seen.written < 64  # stalled on the full socket buffers, not all buffered in memory
    status, headers, body = await _response(reader)
    assert status == 200 and headers["transfer-encoding"] == "chunked" and len(body) == 64 * CHUNK
    writer.close()


async def test_disconnect_mid_stream_ends_the_handler(toy: int, seen: Seen) -> None:
    reader, writer = await _connect(toy)
    writer.write(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
    await reader.readexactly(CHUNK)
    writer.close()
    await asyncio.sleep(0.5)
    assert seen.written < 64


async def test_oversized_body_is_413_through_the_gateway_and_closes(gateway: tuple[int, web.Application]) -> None:
    """A declared Content-Length over maxBodyBytes: the gateway's OpenAI error, nothing more read."""
    reader, writer = await _connect(gateway[0])
    writer.write(f"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: {10**9}\r\n\r\n".encode() + b"x" * 100)
    status, headers, body = await _response(reader)
    assert status == 413 and headers["connection"] == "close" and b'"error"' in body
    assert await asyncio.wait_for(reader.read(), 10) == b""
    writer.close()


async def test_oversized_chunked_body_is_413(gateway: tuple[int, web.Application]) -> None:
    reader, writer = await _connect(gateway[0])
    writer.write(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                 + b"1000\r\n" + b"x" * 4096 + b"\r\n" + b"10\r\n" + b"y" * 16 + b"\r\n")
    status, _, body = await _response(reader)
    assert status == 413 and b"larger than 4096 bytes" in body
    writer.close()


async def test_unknown_path_and_method_are_openai_errors(gateway: tuple[int, web.Application]) -> None:
    reader, writer = await _connect(gateway[0])
    writer.write(b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\nGET /v1/completions HTTP/1.1\r\nHost: x\r\n\r\n")
    (s1, _, b1), (s2, _, b2) = await _response(reader), await _response(reader)
    assert (s1, s2) == (404, 405) and b'"error"' in b1 and b'"error"' in b2
    writer.close()


async def test_draining_answers_with_connection_close(gateway: tuple[int, web.Application]) -> None:
    port, app = gateway
    reader, writer = await _connect(port)
    writer.write(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
    assert "connection" not in (await _response(reader))[1]
    app[GATEWAY].draining = True
    writer.write(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
    status, headers, _ = await _response(reader)
    assert status == 200 and headers["connection"] == "close"
    assert await asyncio.wait_for(reader.read(), 10) == b""
    writer.close()


async def test_http10_closes_after_the_response(toy: int) -> None:
    reader, writer = await _connect(toy)
    writer.write(b"GET /slow?id=a HTTP/1.0\r\n\r\n")
    status, headers, body = await _response(reader)
    assert (status, body, headers["connection"]) == (200, b"a", "close")
    assert await asyncio.wait_for(reader.read(), 10) == b""
    writer.close()


@pytest.mark.parametrize("path", ["/echo", "/answer"])
async def test_http10_keep_alive_is_answered_with_keep_alive_and_kept(toy: int, path: str) -> None:
    """An HTTP/1.0 client that asks for keep-alive gets ``Connection: keep-alive`` (without it an
    HTTP/1.0 answer means close) and its connection serves a second request; for a
    ``web.Response`` and for an :func:`answer` written early."""
    reader, writer = await _connect(toy)
    for body in (b"one", b"two"):
        writer.write(b"POST %s HTTP/1.0\r\nConnection: keep-alive\r\nContent-Length: 3\r\n\r\n%s"
                     % (path.encode(), body))
        status, headers, got = await _response(reader)
        assert (status, got, headers["connection"].lower()) == (200, body, "keep-alive")
    writer.write(b"POST %s HTTP/1.0\r\nContent-Length: 3\r\n\r\nend" % path.encode())
    status, headers, got = await _response(reader)
    assert (status, got, headers["connection"]) == (200, b"end", "close")
    assert await asyncio.wait_for(reader.read(), 10) == b""
    writer.close()


@pytest.mark.parametrize(("path", "ctype"), [("/answer-retyped", "text/plain; charset=utf-8"),
                                            ("/answer-retyped-lower", "text/plain")])
async def test_an_early_answer_keeps_the_content_type_a_prepare_hook_set(toy: int, path: str, ctype: str) -> None:
    """An ``on_response_prepare`` hook that replaces an :func:`answer`'s Content-Type is heard,
    as for a ``web.Response`` (the one-format head wrote the handler's type over it), however it
    spells the name (a lower-case one was written beside the handler's: two Content-Types)."""
    reader, writer = await _connect(toy)
    writer.write(_post(path, b"hi"))
    status, headers, body = await _response(reader)
    assert (status, headers["content-type"], body) == (200, ctype, b"hi")
    writer.close()


@pytest.mark.parametrize("how", ["flag", "config"])
def test_kubellm_gateway_on_the_fast_server_serves_the_openai_client(tmp_path: Path, how: str,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """`kubellm gateway --server fast` (or the config's `server: fast`, the default) in front of a real
    `kubellm sim`: the openai client's plain and streamed completions work through it, and the
    responses are the fast server's (aiohttp's carry its `Server` header)."""
    sim, urls = processes.start(["sim", "--port", "0", "--model", "m", "--fixed-ttft-ms", "0", "--fixed-tpot-ms", "1"],
                                "serving http://")
    cfg = tmp_path / "gateway.yaml"
    cfg.write_text(yaml.safe_dump({"models": [{"name": "m", "endpoints": urls}], **({"server": "fast"} if how == "config" else {})}))
    flag = ["--server", "fast"] if how == "flag" else []
    monkeypatch.delenv("KUBELLM_GATEWAY_SERVER", raising=False)  # the variable would override the config
    gw, found = processes.start(["gateway", "--config", str(cfg), "--port", "0", "--log-level", "warning", *flag],
                                "listening on http://")
    try:
        assert "server" not in httpx.get(found[0] + "/health", timeout=5).headers
        client = openai.OpenAI(base_url=found[0] + "/v1", api_key="x", max_retries=0)
        plain = client.completions.create(model="m", prompt="hi", max_tokens=5)
        assert plain.usage is not None and plain.usage.completion_tokens == 5
        chunks = list(client.completions.create(model="m", prompt="hi", max_tokens=20, stream=True))
        choices = [c.choices[0] for c in chunks if c.choices]
        assert "".join(c.text for c in choices) and choices[-1].finish_reason == "length"
    finally:
        processes.stop(gw)
        processes.stop(sim)


def test_an_unknown_server_is_refused_on_the_command_line(tmp_path: Path) -> None:
    cfg = tmp_path / "gateway.yaml"
    cfg.write_text("models: []\n")
    out = subprocess.run(processes.KUBELLM + ["gateway", "--config", str(cfg), "--server", "uvicorn"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "choose aiohttp or fast" in out.stderr


async def test_http10_stream_is_unframed_and_ends_with_the_connection(toy: int) -> None:
    reader, writer = await _connect(toy)
    writer.write(b"GET /big HTTP/1.0\r\n\r\n")
    head = (await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)).lower()
    assert b"transfer-encoding" not in head and b"connection: close" in head
    assert len(await asyncio.wait_for(reader.read(), 10)) == 64 * CHUNK
    writer.close()


@pytest.mark.parametrize(("chunks", "status"), [(MAX_BODY, 200), (MAX_BODY + 1, 413)])
async def test_a_body_in_one_byte_chunks_is_counted_to_the_limit(toy: int, chunks: int, status: int) -> None:
    reader, writer = await _connect(toy)
    writer.write(b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + b"1\r\nz\r\n" * chunks
                 + b"0\r\n\r\n")
    got, _, body = await _response(reader)
    assert got == status and (status != 200 or body == b"z" * chunks)
    writer.close()


_H2C = "Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n"


async def test_an_h2c_upgrade_is_answered_as_http11_and_parsing_goes_on(toy: int) -> None:
    """`curl --http2` on http:// asks to upgrade: ignored (as aiohttp does), the pipelined request after it
    is answered too, and the connection stays open."""
    reader, writer = await _connect(toy)
    writer.write(f"GET /slow?id=a HTTP/1.1\r\nHost: x\r\n{_H2C}\r\nGET /slow?id=b HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    (s1, _, b1), (s2, h2, b2) = await _response(reader), await _response(reader)
    assert (s1, b1, s2, b2) == (200, b"a", 200, b"b") and "connection" not in h2
    writer.write(_post("/echo", b"again"))
    assert (await _response(reader))[::2] == (200, b"again")
    writer.close()


@pytest.mark.parametrize(("request_bytes", "status"), [
    (b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", 405),
    (b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n" + _H2C.encode() + b"\r\n0\r\n\r\n", 400),
])
async def test_connect_and_an_upgrade_with_a_chunked_body_are_refused_and_closed(toy: int, request_bytes: bytes,
                                                                         status: int) -> None:
    reader, writer = await _connect(toy)
    writer.write(request_bytes)
    got, headers, body = await _response(reader)
    assert got == status and headers["connection"] == "close" and b'"error"' in body
    assert await asyncio.wait_for(reader.read(), 10) == b""
    writer.close()


async def test_one_endless_header_gets_431(toy: int) -> None:
    """llhttp reports a header only at its end: one that never ends is still cut off at 64 KiB."""
    reader, writer = await _connect(toy)
    writer.write(b"GET /slow HTTP/1.1\r\nHost: x\r\nX-Endless: ")
    await writer.drain()
    await asyncio.sleep(0.05)
    for _ in range(9):  # 72 KiB in several reads, no end of line; then nothing more (so no reset)
        writer.write(b"a" * 8192)
        await writer.drain()
        await asyncio.sleep(0.01)
    status, headers, body = await _response(reader)
    assert status == 431 and headers["connection"] == "close" and b"65536 bytes" in body
    writer.close()


async def test_an_error_after_the_stream_opened_cuts_it_short_and_closes(toy: int) -> None:
    """No second status line inside the open chunked body: the body ends unterminated and the connection
    closes, which the client sees as an incomplete response."""
    reader, writer = await _connect(toy)
    writer.write(b"GET /stream-then-fail HTTP/1.1\r\nHost: x\r\n\r\n")
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    assert head.startswith(b"HTTP/1.1 200") and b"chunked" in head.lower()
    assert await asyncio.wait_for(reader.read(), 10) == b"4\r\npart\r\n"  # then EOF: no 0-chunk, no 500
    writer.close()


async def test_chunked_trailers_are_not_request_headers(toy: int) -> None:
    reader, writer = await _connect(toy)
    writer.write(b"POST /header-names HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                 b"2\r\n{}\r\n0\r\nAuthorization: Bearer stolen\r\nX-Forwarded-For: 10.0.0.1\r\n\r\n")
    status, _, body = await _response(reader)
    assert (status, body) == (200, b"host,transfer-encoding")
    writer.close()


async def test_a_malformed_request_after_pipelined_ones_is_refused_after_their_answers(toy: int) -> None:
    reader, writer = await _connect(toy)
    writer.write(b"GET /slow?s=0.2&id=a HTTP/1.1\r\nHost: x\r\n\r\nGET /slow?id=b HTTP/1.1\r\nHost: x\r\n\r\n"
                 b"NOT AN HTTP REQUEST\x00\r\n\r\n")
    answers = [await _response(reader) for _ in range(3)]
    assert [(status, body[:5]) for status, _, body in answers] == [(200, b"a"), (200, b"b"), (400, b'{"err')]
    assert answers[2][1]["connection"] == "close"
    assert await asyncio.wait_for(reader.read(), 10) == b""
    writer.close()


@pytest.mark.parametrize("ahead", ["http10", "pipelined"])
async def test_no_100_continue_to_http10_or_behind_a_pending_answer(toy: int, ahead: str) -> None:
    reader, writer = await _connect(toy)
    expect = b"Content-Length: 4\r\nExpect: 100-continue\r\n\r\nbody"
    if ahead == "http10":
        writer.write(b"POST /echo HTTP/1.0\r\n" + expect)
    else:
        writer.write(b"GET /slow?s=0.2&id=a HTTP/1.1\r\nHost: x\r\n\r\nPOST /echo HTTP/1.1\r\nHost: x\r\n" + expect)
        assert (await _response(reader))[::2] == (200, b"a")
    assert (await _response(reader))[::2] == (200, b"body")
    writer.close()


async def test_the_idle_time_counts_from_the_end_of_a_long_answer(toy: int) -> None:
    """An answer that took longer than keepalive_s (0.4 s here): the connection is still there for the
    client's next request shortly after it."""
    reader, writer = await _connect(toy)
    writer.write(b"GET /slow?s=0.6&id=a HTTP/1.1\r\nHost: x\r\n\r\n")
    assert (await _response(reader))[2] == b"a"
    await asyncio.sleep(0.15)  # more than a sweep interval (keepalive_s / 4), less than keepalive_s
    writer.write(b"GET /slow?id=b HTTP/1.1\r\nHost: x\r\n\r\n")
    assert (await _response(reader))[2] == b"b"
    writer.close()


async def test_an_exception_while_answering_closes_the_connection(toy: int) -> None:
    """An on_response_prepare hook raising: the connection is closed, not left with requests queued
    that nothing answers (and that the idle sweep never closes)."""
    reader, writer = await _connect(toy)
    writer.write(b"GET /prepare-fails HTTP/1.1\r\nHost: x\r\n\r\nGET /slow?id=b HTTP/1.1\r\nHost: x\r\n\r\n")
    assert await asyncio.wait_for(reader.read(), 5) == b""
    writer.close()


async def test_head_is_served_and_a_405_lists_each_method_once(toy: int) -> None:
    reader, writer = await _connect(toy)
    writer.write(b"HEAD /slow?id=abc HTTP/1.1\r\nHost: x\r\n\r\n"
                 b"POST /slow HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    assert head.startswith(b"HTTP/1.1 200") and b"Content-Length: 3\r\n" in head  # and no body follows
    status, headers, _ = await _response(reader)
    assert (status, headers["allow"]) == (405, "GET,HEAD")
    writer.close()


async def test_an_h2c_upgrade_with_a_body_is_served_and_its_body_is_not_a_request(toy: int) -> None:
    """`curl --http2 -d ...` sends its POST with `Upgrade: h2c`: llhttp stops after the head, the server
    reads the Content-Length body itself (even split across reads), then parses on."""
    reader, writer = await _connect(toy)
    smuggled = b"GET /slow?id=smuggled HTTP/1.1\r\n\r\n"
    request = _post("/echo", smuggled, _H2C)
    writer.write(request[:-10])
    await writer.drain()
    await asyncio.sleep(0.05)
    writer.write(request[-10:] + b"GET /slow?id=b HTTP/1.1\r\nHost: x\r\n\r\n")
    (s1, _, b1), (s2, _, b2) = await _response(reader), await _response(reader)
    assert (s1, b1, s2, b2) == (200, smuggled, 200, b"b")
    writer.close()


async def test_pipelined_bodies_past_one_body_limit_pause_reading() -> None:
    """A client pipelining large bodies behind a slow answer: reading pauses once the bodies
    waiting hold more than ``max_body_bytes`` (before, only 16 waiting requests paused it, up to
    16 bodies of that size held per connection), and resumes as they are answered, in order."""
    release = asyncio.Event()

    async def held(request: web.Request) -> web.Response:
        await release.wait()
        return web.Response(text="held")

    async def echo(request: web.Request) -> web.Response:
        return web.Response(body=await request.read())

    app = web.Application()
    app.router.add_post("/held", held)
    app.router.add_post("/echo", echo)
    server = FastServer(app, max_body_bytes=1000)
    await server.startup()
    port = await server.listen("127.0.0.1", 0)
    try:
        reader, writer = await _connect(port)
        writer.write(_post("/held", b"x") + _post("/echo", b"a" * 600) + _post("/echo", b"b" * 600))
        (conn,) = server.connections
        async with asyncio.timeout(10):
            while len(conn.pending) < 2:
                await asyncio.sleep(0.01)
        assert conn._read_paused  # 1,200 body bytes wait behind /held
        release.set()
        answers = [await _response(reader) for _ in range(3)]
        assert [body for _, _, body in answers] == [b"held", b"a" * 600, b"b" * 600]
        assert not conn._read_paused
        writer.close()
    finally:
        await server.cleanup(0.5)
