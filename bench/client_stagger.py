"""How far apart one benchmark client process gets out requests that it takes up together.

``vllm bench serve --max-concurrency C`` (and Lambda-era ``benchmark_serving.py``) start each
request's clock and then ``session.post`` it with aiohttp, all in one asyncio process, so the
first C requests leave the client one after another, not at one instant. This measures the
spacing: N streamed POSTs taken up at once (a session per request, as benchmark_serving did,
and one shared session, as vllm bench serve does), the times their headers reach a minimal
loopback server in another process, over 20 rounds. ``kubellm.sim.calibration`` records the
result as ``MEASURED_CLIENT_COST_S`` (docs/sim.md, "Published figures beside the model").

    .venv/bin/python bench/client_stagger.py [N]
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import statistics
import sys
import time
from multiprocessing.queues import Queue

import aiohttp

BODY = b'data: {"x":1}\n\ndata: [DONE]\n\n'
PAYLOAD = {"model": "m", "prompt": "hello " * 40, "max_tokens": 128, "stream": True, "ignore_eos": True}


def _serve(count: int, ports: Queue[int], arrivals: Queue[list[float]]) -> None:
    """A minimal HTTP server: records when each request's headers arrive, answers one SSE chunk."""
    async def main() -> None:
        seen: list[float] = []

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            head = await reader.readuntil(b"\r\n\r\n")
            seen.append(time.monotonic())
            length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                          if line.lower().startswith(b"content-length"))
            await reader.readexactly(length)
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                         b"Content-Length: %d\r\n\r\n" % len(BODY) + BODY)
            await writer.drain()
            writer.close()
            if len(seen) == count:
                arrivals.put(sorted(seen))
                seen.clear()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        ports.put(server.sockets[0].getsockname()[1])
        await server.serve_forever()

    asyncio.run(main())


async def _take_up(port: int, count: int, shared: bool) -> float:
    """Send *count* streamed requests at once; return when the first one's clock started."""
    url = f"http://127.0.0.1:{port}/v1/completions"
    starts: list[float] = []

    async def one(session: aiohttp.ClientSession) -> None:
        starts.append(time.monotonic())
        async with session.post(url, json=PAYLOAD) as response:
            async for _ in response.content:
                pass

    async def own_session() -> None:
        async with aiohttp.ClientSession() as session:
            await one(session)

    if shared:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
            await asyncio.gather(*(one(session) for _ in range(count)))
    else:
        await asyncio.gather(*(own_session() for _ in range(count)))
    return min(starts)


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    ports: Queue[int] = mp.Queue()
    arrivals: Queue[list[float]] = mp.Queue()
    server = mp.Process(target=_serve, args=(count, ports, arrivals), daemon=True)
    server.start()
    port = ports.get()
    try:
        for shared, name in ((False, "a session per request"), (True, "one shared session")):
            gaps, firsts = [], []
            for _ in range(20):
                start = asyncio.run(_take_up(port, count, shared))
                seen = arrivals.get()
                firsts.append(1000 * (seen[0] - start))
                gaps += [1000 * (b - a) for a, b in zip(seen, seen[1:])]
            print(f"{name}: {count} requests; the first reaches the server {statistics.median(firsts):.2f} ms "
                  f"after its clock starts (median); gaps between arrivals: median {statistics.median(gaps):.3f} "
                  f"ms, mean {statistics.mean(gaps):.3f} ms")
    finally:
        server.terminate()
        server.join()


if __name__ == "__main__":
    main()
