"""A STAND-IN for the MLflow model registry's REST API (the full `mlflow` server package is too
heavy to install for these tests): model-versions/get-download-uri and registered-models/alias,
with MLflow's error body for unknown models. Versions come from ROOT/registry.json:
{"name": {"versions": {"1": "<artifact uri>"}, "aliases": {"champion": "1"}}}.

    python mlflow_standin.py ROOT      prints "PORT <n>" once listening on 127.0.0.1
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from aiohttp import web

ROOT = web.AppKey("root", Path)


def _missing(what: str) -> web.Response:
    return web.json_response({"error_code": "RESOURCE_DOES_NOT_EXIST", "message": f"{what} not found"}, status=404)


async def download_uri(request: web.Request) -> web.Response:
    models = json.loads((request.app[ROOT] / "registry.json").read_text())
    name, version = request.query.get("name", ""), request.query.get("version", "")
    uri = models.get(name, {}).get("versions", {}).get(version)
    return web.json_response({"artifact_uri": uri}) if uri else _missing(f"Model Version (name={name}, version={version})")


async def alias(request: web.Request) -> web.Response:
    models = json.loads((request.app[ROOT] / "registry.json").read_text())
    name, alias_name = request.query.get("name", ""), request.query.get("alias", "")
    version = models.get(name, {}).get("aliases", {}).get(alias_name)
    if version is None:
        return _missing(f"Registered model alias {alias_name}")
    return web.json_response({"model_version": {"name": name, "version": version}})


async def main() -> None:
    app = web.Application()
    app[ROOT] = Path(sys.argv[1])
    app.router.add_get("/api/2.0/mlflow/model-versions/get-download-uri", download_uri)
    app.router.add_get("/api/2.0/mlflow/registered-models/alias", alias)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    print(f"PORT {site._server.sockets[0].getsockname()[1]}", flush=True)  # type: ignore[union-attr]
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main())
