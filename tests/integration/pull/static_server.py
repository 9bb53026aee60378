"""An HTTP file server for tests: aiohttp's static file handling (which answers Range requests)
under /files/, and /stall/<name>, which sends headers and the first bytes of a file, then hangs.

    python static_server.py ROOT      prints "PORT <n>" once listening on 127.0.0.1
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from aiohttp import web

ROOT = web.AppKey("root", Path)


async def stall(request: web.Request) -> web.StreamResponse:
    path = request.app[ROOT] / request.match_info["name"]
    size = path.stat().st_size
    if request.headers.get("Range") == "bytes=0-0":  # answer the size probe, stall the transfer
        return web.Response(status=206, body=path.read_bytes()[:1], headers={"Content-Range": f"bytes 0-0/{size}"})
    response = web.StreamResponse(status=206)
    response.content_length = size
    response.headers["Content-Range"] = f"bytes 0-{size - 1}/{size}"
    await response.prepare(request)
    await response.write(path.read_bytes()[:1024])
    await asyncio.sleep(3600)
    return response


async def main() -> None:
    app = web.Application()
    app[ROOT] = Path(sys.argv[1])
    app.router.add_static("/files/", app[ROOT])
    app.router.add_get("/stall/{name}", stall)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    print(f"PORT {site._server.sockets[0].getsockname()[1]}", flush=True)  # type: ignore[union-attr]
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main())
