"""A STAND-IN for the Kubeflow Model Registry's REST API (v1alpha3). The real server (Go
module github.com/kubeflow/model-registry) needs a MySQL or PostgreSQL database beside it,
more than these tests can start here; this serves the four GET routes kubellm reads, shaped
as the registry's published OpenAPI document (v0.3.8; the part used is in
data/model-registry-openapi.json, and the tests validate these answers against it): find a
registered model by name, list registered models, list a model's versions, list a version's
artifacts newest first. Lists are paged two items at a time, with nextPageToken, so paging
is exercised. Errors carry the document's Error object ({code, message}).

Models come from ROOT/registry.json: {"llama": {"v1": "<artifact uri>", "v2": "..."}}.
With a token argument, every request must carry ``Authorization: Bearer <token>``.

    python model_registry_standin.py ROOT [TOKEN]     prints "PORT <n>" once listening
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from aiohttp import web

API = "/api/model_registry/v1alpha3"
PAGE = 2
ROOT = web.AppKey("root", Path)
TOKEN = web.AppKey("token", str)


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"code": str(status), "message": message}, status=status)


def _registry(request: web.Request) -> dict[str, dict[str, str]]:
    data: dict[str, dict[str, str]] = json.loads((request.app[ROOT] / "registry.json").read_text())
    return data


def _model(name: str, index: int) -> dict[str, Any]:
    return {"id": str(index + 1), "name": name, "state": "LIVE", "createTimeSinceEpoch": "1700000000000",
            "lastUpdateTimeSinceEpoch": "1700000000000"}


def _version(model_id: str, name: str, index: int) -> dict[str, Any]:
    return {"id": f"{model_id}-{index + 1}", "name": name, "registeredModelId": model_id, "state": "LIVE",
            "createTimeSinceEpoch": "1700000000000", "lastUpdateTimeSinceEpoch": "1700000000000"}


def _page(request: web.Request, items: list[dict[str, Any]]) -> web.Response:
    start = int(request.query.get("nextPageToken") or 0)
    size = min(int(request.query.get("pageSize") or PAGE), PAGE)
    chunk = items[start:start + size]
    token = str(start + size) if start + size < len(items) else ""
    return web.json_response({"items": chunk, "size": len(chunk), "pageSize": size, "nextPageToken": token})


async def find_model(request: web.Request) -> web.Response:
    names = sorted(_registry(request))
    name = request.query.get("name", "")
    if name not in names:
        return _error(404, f"no registered model found for name={name}")
    return web.json_response(_model(name, names.index(name)))


async def list_models(request: web.Request) -> web.Response:
    return _page(request, [_model(n, i) for i, n in enumerate(sorted(_registry(request)))])


def _by_id(request: web.Request, model_id: str) -> tuple[str, dict[str, str]] | None:
    names = sorted(_registry(request))
    index = int(model_id) - 1 if model_id.isdigit() else -1
    return (names[index], _registry(request)[names[index]]) if 0 <= index < len(names) else None


async def list_versions(request: web.Request) -> web.Response:
    model_id = request.match_info["model_id"]
    found = _by_id(request, model_id)
    if found is None:
        return _error(404, f"no registered model with id {model_id}")
    return _page(request, [_version(model_id, v, i) for i, v in enumerate(found[1])])


async def list_artifacts(request: web.Request) -> web.Response:
    model_id, _, number = request.match_info["version_id"].partition("-")
    found = _by_id(request, model_id)
    versions = list(found[1].items()) if found else []
    index = int(number) - 1 if number.isdigit() else -1
    if not 0 <= index < len(versions):
        return _error(404, f"no model version with id {request.match_info['version_id']}")
    artifact = {"id": f"a{model_id}-{number}", "artifactType": "model-artifact", "name": versions[index][0],
                "uri": versions[index][1], "state": "LIVE", "createTimeSinceEpoch": "1700000000000",
                "lastUpdateTimeSinceEpoch": "1700000000000"}
    return _page(request, [artifact])


@web.middleware
async def bearer(request: web.Request, handler: Any) -> web.StreamResponse:
    token = request.app[TOKEN]
    if token and request.headers.get("Authorization") != f"Bearer {token}":
        return _error(401, "unauthorized")
    response: web.StreamResponse = await handler(request)
    return response


def build_app(root: Path, token: str) -> web.Application:
    app = web.Application(middlewares=[bearer])
    app[ROOT], app[TOKEN] = root, token
    app.router.add_get(f"{API}/registered_model", find_model)
    app.router.add_get(f"{API}/registered_models", list_models)
    app.router.add_get(f"{API}/registered_models/{{model_id}}/versions", list_versions)
    app.router.add_get(f"{API}/model_versions/{{version_id}}/artifacts", list_artifacts)
    return app


if __name__ == "__main__":
    # web.run_app prints its own banner; "PORT <n>" is what start_announcing waits for
    sockets: list[Any] = []

    async def announce(app: web.Application) -> None:
        print(f"PORT {sockets[0].getsockname()[1]}", flush=True)

    import socket

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    sockets.append(listener)
    application = build_app(Path(sys.argv[1]), sys.argv[2] if len(sys.argv) > 2 else "")
    application.on_startup.append(announce)
    web.run_app(application, sock=listener, print=None, access_log=None, handle_signals=True)
