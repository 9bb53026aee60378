"""The Python floor for the gateway's data path: the smallest honest proxy, side by side.

``floor`` is the least a Python proxy on this path can do: an ``asyncio.Protocol`` HTTP/1.1
server on uvloop, requests parsed by llhttp (``httptools``), each POST's body forwarded to the
instant engine with kubellm's own client (``gateway/h1.py``, keep-alive pool) and the engine's
body relayed back with a Content-Length, keep-alive, responses in request order. It does no
routing, no JSON, no metrics, no error mapping: whatever ``kubellm gateway`` spends above it is
kubellm's own work or its HTTP server's, and the floor against vllm-router is what Python can
do at all here.

``aiohttp+floor`` is the same forwarding behind aiohttp's server (``web.Application``, one
handler, ``handler_cancellation`` as ``kubellm gateway`` runs it): its cost above the floor is
aiohttp's server side; kubellm's above it is kubellm's own per-request work.

Measured like ``bench/gateway_overhead.py`` (same instant engine, wrk, CPU per request from
/proc) in interleaved rounds: direct, vllm-router, floor, aiohttp+floor, kubellm gateway (one
worker each, on aiohttp's server and on the fast one, ``gateway/server.py``).

    .venv/bin/python bench/proxy_floor.py [--rounds 3] [--seconds 5] [--json out.json]
        [--baseline REV[,REV...]] [--only-baselines]

``--baseline`` adds a ``kubellm gateway`` (fast server) run from each git revision's ``src/``,
side by side with the working tree's; ``--only-baselines`` leaves out the floors and the
working tree's gateways (direct and vllm-router stay, as the reference), for an A/B of commits.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gateway_overhead import Wrk, baseline, kubellm, measure  # noqa: E402
from gateway_routing import free_port, process  # noqa: E402


# -- the floor proxy -------------------------------------------------------------------------
class _Floor(asyncio.Protocol):
    """One client connection: parse with llhttp, forward each POST, answer in order."""

    def __init__(self, pool: object, engine: str) -> None:
        import httptools

        self.pool = pool
        self.engine = engine
        self.parser = httptools.HttpRequestParser(self)
        self.body: list[bytes] = []
        self.last: asyncio.Future[None] | None = None  # the previous response's task (ordering)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.t: asyncio.Transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except Exception:  # malformed: close, as any server would
            self.t.close()

    def connection_lost(self, exc: BaseException | None) -> None:
        if self.last is not None and not self.last.done():
            self.last.cancel()

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        body, self.body = b"".join(self.body), []
        keep = self.parser.should_keep_alive()
        self.last = asyncio.ensure_future(self._relay(body, keep, self.last))

    async def _relay(self, body: bytes, keep: bool, before: asyncio.Future[None] | None) -> None:
        response = await self.pool.post(self.engine, body, {"Content-Type": "application/json"},  # type: ignore[attr-defined]
                                        connect_timeout=5.0)
        data = await response.read()
        response.release()
        if before is not None and not before.done():
            await before
        head = b"HTTP/1.1 %d OK\r\nContent-Type: %s\r\nContent-Length: %d\r\n%s\r\n" % (
            response.status, response.content_type.encode(), len(data), b"" if keep else b"Connection: close\r\n")
        self.t.write(head + data)
        if not keep:
            self.t.close()


def _serve_floor(port: int, engine: str) -> None:
    import uvloop

    from kubellm.gateway.h1 import H1Pool

    async def main() -> None:
        pool = H1Pool()
        url = engine + "/v1/completions"
        server = await asyncio.get_running_loop().create_server(lambda: _Floor(pool, url), "127.0.0.1", port,
                                                                 backlog=1024)
        print(f"floor proxy on http://127.0.0.1:{port}", flush=True)
        await server.serve_forever()

    uvloop.run(main())


def _serve_aiohttp_floor(port: int, engine: str) -> None:
    """The same forwarding as the floor, behind aiohttp's server (as ``kubellm gateway`` runs it):
    the difference to the floor is aiohttp's server side, the rest to kubellm its own work."""
    import uvloop
    from aiohttp import web

    from kubellm.gateway.h1 import H1Pool

    async def main() -> None:
        pool = H1Pool()
        url = engine + "/v1/completions"

        async def forward(request: web.Request) -> web.Response:
            response = await pool.post(url, await request.read(), {"Content-Type": "application/json"},
                                       connect_timeout=5.0)
            data = await response.read()
            response.release()
            return web.Response(body=data, status=response.status, content_type=response.content_type)

        app = web.Application()
        app.router.add_post("/v1/completions", forward)
        runner = web.AppRunner(app, handler_cancellation=True, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port, backlog=1024).start()
        print(f"floor proxy on http://127.0.0.1:{port}", flush=True)
        await asyncio.Event().wait()

    uvloop.run(main())


@contextlib.contextmanager
def floor(engine: str, kind: str = "--serve-floor") -> Iterator[str]:
    with process([sys.executable, __file__, kind, str(free_port()), engine], "floor proxy on") as lines:
        yield lines[0].split()[-1]


@contextlib.contextmanager
def _kubellm_at(rev: str, engine: str, tmp: Path) -> Iterator[str]:
    """``kubellm gateway --server fast`` from *rev*'s ``src/`` (git archive), first on PYTHONPATH."""
    root = Path(__file__).resolve().parent.parent
    dest = tmp / f"baseline-{rev}"
    dest.mkdir()
    archive = subprocess.run(["git", "-C", str(root), "archive", rev, "src"], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    before = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = str(dest / "src")
    try:
        cm = kubellm(engine, 1, "fast")
        url = cm.__enter__()
    finally:
        if before is None:
            os.environ.pop("PYTHONPATH")
        else:
            os.environ["PYTHONPATH"] = before
    try:
        yield url
    finally:
        cm.__exit__(None, None, None)


# -- the comparison ----------------------------------------------------------------------------
def _median(runs: list[Wrk], field: str) -> float:
    return float(statistics.median(getattr(r, field) for r in runs))


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--kubellm-servers", default="aiohttp,fast", help="one kubellm gateway per --server value")
    ap.add_argument("--baseline", default=None, metavar="REV[,REV...]",
                    help="also a kubellm gateway (fast server) run from each git revision's src/, side by side")
    ap.add_argument("--only-baselines", action="store_true",
                    help="no floors and no working-tree gateways: direct, vllm-router and the --baseline revisions")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--serve-floor", nargs=2, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--serve-aiohttp-floor", nargs=2, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve_floor is not None:
        return _serve_floor(int(args.serve_floor[0]), args.serve_floor[1])
    if args.serve_aiohttp_floor is not None:
        return _serve_aiohttp_floor(int(args.serve_aiohttp_floor[0]), args.serve_aiohttp_floor[1])
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        script, engine, targets = baseline(stack, Path(tmp))
        if not args.only_baselines:
            targets |= {"floor": stack.enter_context(floor(engine)),
                        "aiohttp+floor": stack.enter_context(floor(engine, "--serve-aiohttp-floor")),
                        **{f"kubellm {server}": stack.enter_context(kubellm(engine, 1, server))
                           for server in args.kubellm_servers.split(",")}}
        for rev in filter(None, (args.baseline or "").split(",")):
            targets[f"fast @{rev}"] = stack.enter_context(_kubellm_at(rev, engine, Path(tmp)))
        one, many = measure(targets, args, script)
    report(one, many, args)


def report(one: dict[str, list[Wrk]], many: dict[str, list[Wrk]], args: argparse.Namespace) -> None:
    with open("/proc/loadavg") as handle:
        load = handle.read().split()[0]
    print(f"{args.rounds} rounds of {args.seconds:g} s per target; {os.cpu_count()} cores; load average {load}")
    base50 = _median(one["direct"], "p50_us")
    rust50 = _median(one["vllm-router"], "p50_us") - base50
    rust_cpu = _median(many["vllm-router"], "cpu_us")
    rows = {}
    for name in one:
        p50 = _median(one[name], "p50_us")
        rps, cpu = _median(many[name], "rps"), _median(many[name], "cpu_us")
        rows[name] = {"p50_us": p50, "added_p50_us": p50 - base50, "rps": rps, "cpu_us_per_request": cpu,
                      "runs_1": [asdict(r) for r in one[name]], "runs_many": [asdict(r) for r in many[name]]}
        print(f"{name:>15}: 1 conn p50 {p50:6.0f} us (added {p50 - base50:+5.0f}, "
              f"{(p50 - base50) / max(rust50, 1):.2f}x vllm-router's); {args.connections} conns {rps:7.0f} req/s, "
              f"{cpu:5.1f} us CPU per request ({cpu / rust_cpu:.2f}x vllm-router's)")
    if args.json:
        args.json.write_text(json.dumps({"load_average": load, "rounds": args.rounds, "seconds": args.seconds,
                                         "connections": args.connections, "targets": rows}, indent=2))


if __name__ == "__main__":
    main()
