"""models:/name/version (MLflow model registry): resolved to the version's artifact URI.

Uses the registry's REST API (`model-versions/get-download-uri`, aliases `@name`, stages),
then the artifact URI (s3://, gs://, az://... or a local path) is pulled by its own driver.
"""

from __future__ import annotations

from typing import Any

import httpx

from kubellm.pull.drivers.httpio import body_message, make_client, send
from kubellm.pull.errors import CredentialsError, NotFoundError, PullInputError, SourceError
from kubellm.pull.options import SourceSettings, TransferOptions

API = "/api/2.0/mlflow"


def resolve_model_version(location: str, settings: SourceSettings, options: TransferOptions) -> str:
    if not settings.mlflow_tracking_uri:
        raise PullInputError("models:/ URIs need the MLflow registry's address", "set MLFLOW_TRACKING_URI")
    name, _, version = location.partition("/")
    base = settings.mlflow_tracking_uri.rstrip("/") + API
    headers = {"Authorization": f"Bearer {settings.mlflow_token}"} if settings.mlflow_token else {}
    with make_client(options, settings.ca_bundle) as client:
        client.headers.update(headers)
        where = f"models:/{location}"
        if version.startswith("@"):
            body = _get(client, f"{base}/registered-models/alias", {"name": name, "alias": version[1:]}, where)
            version = str(body["model_version"]["version"])
        elif not version.isdigit():
            body = _get(client, f"{base}/registered-models/get-latest-versions", {"name": name, "stages": version}, where)
            if not body.get("model_versions"):
                raise NotFoundError(f"{where}: no version in stage {version!r}", "check the stage name")
            version = str(body["model_versions"][0]["version"])
        uri = str(_get(client, f"{base}/model-versions/get-download-uri", {"name": name, "version": version}, where)["artifact_uri"])
    if uri.startswith("mlflow-artifacts:"):
        raise PullInputError(f"{where} is stored through the MLflow artifact proxy ({uri})", "point the registry at direct storage (s3://, gs://, az://)")
    return uri.removeprefix("file://") if uri.startswith("file://") else uri


def _get(client: httpx.Client, url: str, params: dict[str, str], where: str) -> dict[str, Any]:
    response = send(client, "GET", url, where, params=params)
    if response.status_code in (401, 403):
        raise CredentialsError(f"{where}: the MLflow registry denied access", "set MLFLOW_TRACKING_TOKEN")
    if response.status_code == 404 or "RESOURCE_DOES_NOT_EXIST" in response.text:
        raise NotFoundError(f"{where}: {body_message(response)}", "check the model name and version")
    if response.status_code >= 400:
        raise SourceError(f"{where}: MLflow registry answered HTTP {response.status_code}: {body_message(response)}")
    body: dict[str, Any] = response.json()
    return body
