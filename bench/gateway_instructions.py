"""Instructions per proxied request in the gateway's own code, counted by valgrind: a figure
that does not move with the load of a shared machine.

Timings on this two-core box move by 10% between identical runs; an instruction count moves
by 0.3%. Here the gateway (the fast server, the default profile, one engine) serves POSTs of a
1-token completion in one process, on uvloop, with both sockets replaced by in-memory
transports: the client's next request and the engine's answer are delivered through
``loop.call_soon``, as a socket's data would be after a loop iteration. What is counted is
everything in that process: llhttp, the gateway's Python, uvloop's loop; not the kernel's
socket work (about a third of the gateway's CPU on loopback, docs/gateway.md). Two runs of
different lengths are subtracted, so start-up and imports cancel out.

    .venv/bin/python bench/gateway_instructions.py [--rev HEAD~3,HEAD] [--connections 16]

``--rev`` counts each git revision's ``src/`` (``git archive``) beside the working tree's.
Needs ``valgrind`` (``apt-get install valgrind``); a run takes about a minute per target.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODEL = "bench-model"
ANSWER = (b'{"id": "cmpl-1", "object": "text_completion", "created": 0, "model": "bench-model", "choices": '
          b'[{"index": 0, "text": "x", "finish_reason": "length", "logprobs": null}], "usage": '
          b'{"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}')
ENGINE_ANSWER = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (
    len(ANSWER), ANSWER)
BODY = b'{"model": "bench-model", "prompt": "hello", "max_tokens": 1}'
REQUEST = (b"POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nContent-Type: application/json\r\n"
           b"Content-Length: %d\r\n\r\n%s" % (len(BODY), BODY))
ENGINE = "http://127.0.0.1:8000"


# -- the in-process run (what valgrind counts) ------------------------------------------------
class _EngineSide:
    """The engine's socket: every request written is answered on the next loop iteration."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.protocol: asyncio.Protocol | None = None

    def write(self, data: bytes) -> None:
        assert self.protocol is not None
        self.loop.call_soon(self.protocol.data_received, ENGINE_ANSWER)

    def is_closing(self) -> bool:
        return False

    def close(self) -> None:
        pass

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


class _ClientSide(_EngineSide):
    """The client's socket: each answer written is followed by the next request, *left* in all."""

    def __init__(self, loop: asyncio.AbstractEventLoop, left: int, done: asyncio.Future[None]) -> None:
        super().__init__(loop)
        self.left, self.done, self.failed = left, done, 0

    def write(self, data: bytes) -> None:
        assert self.protocol is not None
        self.failed += not data.startswith(b"HTTP/1.1 200 ")
        self.left -= 1
        if self.left > 0:
            self.loop.call_soon(self.protocol.data_received, REQUEST)
        elif not self.done.done():
            self.done.set_result(None)

    def set_write_buffer_limits(self, high: int) -> None:
        pass


async def serve(requests: int, connections: int) -> int:
    """*requests* through a gateway on in-memory transports; returns how many failed."""
    from kubellm.gateway import h1
    from kubellm.gateway.app import GATEWAY, build_gateway
    from kubellm.gateway.config import parse_config
    from kubellm.gateway.server import FastServer, _Connection

    config = parse_config({"models": [{"name": MODEL, "endpoints": [ENGINE]}], "accessLog": False})
    app = build_gateway(config)
    gateway = app[GATEWAY]
    loop = asyncio.get_running_loop()
    gateway._h1 = h1.H1Pool()
    gateway.apply_config(config)  # the proxy on this pool
    for endpoint in gateway.endpoints():
        endpoint.healthy = True
    origin = h1.Target.of(ENGINE).origin
    for _ in range(connections):
        conn = h1._Connection(gateway._h1, origin, loop)
        engine = _EngineSide(loop)
        engine.protocol = conn
        conn.connection_made(engine)  # type: ignore[arg-type]
        conn.idle_since = loop.time()
        gateway._h1.put_back(conn)
    server = FastServer(app, max_body_bytes=config.max_body_bytes)
    app.freeze()
    server.prepare_hooks = tuple(app.on_response_prepare)
    clients = []
    for _ in range(connections):
        client = _ClientSide(loop, requests // connections, loop.create_future())
        client.protocol = _Connection(server)
        client.protocol.connection_made(client)  # type: ignore[arg-type]
        clients.append(client)
    for client in clients:
        assert client.protocol is not None
        client.protocol.data_received(REQUEST)
    await asyncio.gather(*(c.done for c in clients))
    return sum(c.failed for c in clients)


def _inner(requests: int, connections: int) -> None:
    import uvloop

    failed = uvloop.run(serve(64, connections))  # warm-up: caches, first series
    if requests:
        failed += uvloop.run(serve(requests, connections))
    if failed:
        sys.exit(f"{failed} requests failed")


# -- counting ----------------------------------------------------------------------------------
def instructions(src: Path, requests: int, connections: int) -> int:
    """valgrind's instruction count of one in-process run with *src* first on the path."""
    env = {**os.environ, "PYTHONPATH": str(src)}
    cmd = ["valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null",
           sys.executable, __file__, "--inner", str(requests), str(connections)]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True)
    found = re.search(r"I\s+refs:\s+([\d,]+)", out.stderr)
    if out.returncode != 0 or found is None:
        raise RuntimeError(f"valgrind run from {src} failed:\n{out.stderr[-2000:]}")
    return int(found.group(1).replace(",", ""))


def per_request(src: Path, connections: int, short: int, long: int) -> float:
    return (instructions(src, long, connections) - instructions(src, short, connections)) / (long - short)


def _archive(rev: str, tmp: Path) -> Path:
    dest = tmp / rev.replace("/", "_")
    dest.mkdir()
    data = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "src"], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=data, check=True)
    return dest / "src"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rev", default="", help="also these git revisions' src/, comma-separated")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--requests", default="800,4000", help="the two run lengths subtracted")
    parser.add_argument("--inner", nargs=2, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inner:
        _inner(*args.inner)
        return
    if shutil.which("valgrind") is None:
        sys.exit("needs valgrind: apt-get install valgrind")
    short, long = (int(n) for n in args.requests.split(","))
    with tempfile.TemporaryDirectory() as tmp:
        targets = {rev: _archive(rev, Path(tmp)) for rev in args.rev.split(",") if rev}
        targets["working tree"] = ROOT / "src"
        counts = {name: per_request(src, args.connections, short, long) for name, src in targets.items()}
    first = next(iter(counts.values()))
    print(f"instructions per proxied request ({args.connections} connections, runs of {short} and {long}):")
    for name, count in counts.items():
        print(f"  {name:>14}: {count:10,.0f}  ({count / first:.2f}x the first)")


if __name__ == "__main__":
    main()
