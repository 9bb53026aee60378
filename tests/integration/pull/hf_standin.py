"""A STAND-IN for the Hugging Face Hub, for tests only: no internet reaches the real Hub here.

It serves the subset of the Hub's HTTP API that `huggingface_hub.HfApi.model_info` and
`/resolve/` downloads use, with the Hub's error headers (X-Error-Code: GatedRepo,
RepoNotFound, RevisionNotFound), byte ranges, an optional throttle, and a byte counter
(GET /_stats) so tests can measure what a pull fetched.

    python hf_standin.py ROOT [--throttle BYTES_PER_S]

ROOT/repos.json: {"org/name": {"sha": "<40 hex>", "refs": ["main"], "gated": false,
"token": null, "lfs_sha256": {"file": "<hex to claim instead of the real one>"},
"extra_siblings": [{"rfilename": "...", "size": 1}]}}; files under ROOT/org/name/.
Prints "PORT <n>" once listening on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import re
from pathlib import Path
from typing import Any

from aiohttp import web

STATS = web.AppKey("stats", dict)


def _repos(root: Path) -> dict[str, Any]:
    path = root / "repos.json"
    return json.loads(path.read_text()) if path.exists() else {}


def _error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status, headers={"X-Error-Code": code, "X-Error-Message": message})


def _lookup(request: web.Request, repo_id: str, revision: str) -> tuple[dict[str, Any], Path] | web.Response:
    root: Path = request.app["root"]
    repo = _repos(root).get(repo_id)
    if repo is None:
        return _error(401, "RepoNotFound", "Repository not found")
    if repo.get("gated") and request.headers.get("Authorization") != f"Bearer {repo.get('token')}":
        return _error(401, "GatedRepo", "Access to model is restricted")
    if revision not in (repo["sha"], *repo.get("refs", ["main"])):
        return _error(404, "RevisionNotFound", f"Invalid rev id: {revision}")
    return repo, root / repo_id


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


async def model_info(request: web.Request) -> web.Response:
    repo_id = f"{request.match_info['org']}/{request.match_info['name']}"
    found = _lookup(request, repo_id, request.match_info["rev"])
    if isinstance(found, web.Response):
        return found
    repo, base = found
    siblings = []
    for path in sorted(p for p in base.rglob("*") if p.is_file()):
        name = path.relative_to(base).as_posix()
        size = path.stat().st_size
        entry: dict[str, Any] = {"rfilename": name, "size": size, "blobId": hashlib.sha1(path.read_bytes()).hexdigest()}
        if name.endswith((".safetensors", ".bin", ".gguf")):
            sha = repo.get("lfs_sha256", {}).get(name) or _sha256(path)
            entry["lfs"] = {"size": size, "sha256": sha, "pointerSize": 134}
        siblings.append(entry)
    siblings += repo.get("extra_siblings", [])
    return web.json_response({"id": repo_id, "modelId": repo_id, "sha": repo["sha"], "private": False, "siblings": siblings})


async def resolve(request: web.Request) -> web.StreamResponse:
    repo_id = f"{request.match_info['org']}/{request.match_info['name']}"
    found = _lookup(request, repo_id, request.match_info["rev"])
    if isinstance(found, web.Response):
        return found
    _, base = found
    path = base / request.match_info["path"]
    if not path.is_file() or ".." in request.match_info["path"]:
        return _error(404, "EntryNotFound", "Entry not found")
    size = path.stat().st_size
    start, end = _range(request.headers.get("Range"), size)
    response = web.StreamResponse(status=206 if "Range" in request.headers else 200)
    response.content_length = end - start
    response.headers["Accept-Ranges"] = "bytes"
    response.headers["ETag"] = f'"{_sha256(path)}"'
    if "Range" in request.headers:
        response.headers["Content-Range"] = f"bytes {start}-{end - 1}/{size}"
    await response.prepare(request)
    if request.method == "HEAD":
        return response
    await _send(request, response, path, start, end)
    return response


async def _send(request: web.Request, response: web.StreamResponse, path: Path, start: int, end: int) -> None:
    throttle: float = request.app["throttle"]
    stats = request.app[STATS]
    with path.open("rb") as handle:
        handle.seek(start)
        left = end - start
        while left > 0:
            block = handle.read(min(256 * 1024, left))
            await response.write(block)
            stats["bytes"] += len(block)
            left -= len(block)
            if throttle:
                await asyncio.sleep(len(block) / throttle)


def _range(header: str | None, size: int) -> tuple[int, int]:
    match = re.fullmatch(r"bytes=(\d+)-(\d*)", header or "")
    if match is None:
        return 0, size
    return int(match[1]), min(size, int(match[2]) + 1) if match[2] else size


async def stats(request: web.Request) -> web.Response:
    if request.method == "POST":
        request.app[STATS]["bytes"] = 0
    return web.json_response(request.app[STATS])


def build_app(root: Path, throttle: float) -> web.Application:
    app = web.Application()
    app["root"], app["throttle"] = root, throttle
    app[STATS] = {"bytes": 0}
    app.router.add_route("*", "/_stats", stats)
    app.router.add_get("/api/models/{org}/{name}/revision/{rev}", model_info)
    app.router.add_route("GET", "/{org}/{name}/resolve/{rev}/{path:.+}", resolve)
    return app


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("root", type=Path)
    parser.add_argument("--throttle", type=float, default=0.0)
    args = parser.parse_args()
    runner = web.AppRunner(build_app(args.root, args.throttle), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    print(f"PORT {port}", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main())
