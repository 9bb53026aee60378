"""model-registry://model/version (Kubeflow Model Registry): resolved to the URI stored on the
version's model artifact, which is then pulled by its own driver (s3://, gs://, hf://, oci://...).

The registry's REST API (v1alpha3, as its published OpenAPI document describes it), the same
three steps Kubeflow's own KServe storage initializer takes: the registered model by name,
the model version by name among the model's versions, then the version's newest model
artifact. The registry's address is ``MODEL_REGISTRY_BASE_URL`` (a URL, or host:port with
``MODEL_REGISTRY_SCHEME``, as Kubeflow's initializer reads it); ``MODEL_REGISTRY_TOKEN`` is
sent as a bearer token. In a cluster both come from the spec's credentials Secret.

Nothing is written while resolving: an unknown model or version, a registry that refuses or
does not answer within the stall timeout, ends the pull before the destination is touched.
"""

from __future__ import annotations

from typing import Any

import httpx

from kubellm.pull.drivers.httpio import body_message, make_client, send
from kubellm.pull.errors import CredentialsError, NotFoundError, PullInputError, SourceError
from kubellm.pull.options import SourceSettings, TransferOptions

API = "/api/model_registry/v1alpha3"
PAGE = "100"  # the API pages lists; a model with more versions is followed page by page
MODEL_ARTIFACT = "model-artifact"


def registry_base(settings: SourceSettings) -> str:
    url = settings.model_registry_url
    if not url:
        raise PullInputError("model-registry:// URIs need the registry's address",
                             "set MODEL_REGISTRY_BASE_URL (e.g. http://model-registry-service.kubeflow.svc:8080)")
    if "://" not in url:
        url = f"{settings.model_registry_scheme}://{url}"
    return url.rstrip("/") + API


def resolve_registry_version(location: str, settings: SourceSettings, options: TransferOptions) -> str:
    """The artifact URI stored for model-registry://*location* (``model/version``)."""
    model, _, version = location.partition("/")
    where = f"model-registry://{location}"
    base = registry_base(settings)
    with make_client(options, settings.ca_bundle) as client:
        if settings.model_registry_token:
            client.headers["Authorization"] = f"Bearer {settings.model_registry_token}"
        model_id = _registered_model_id(client, base, model, where)
        version_id = _version_id(client, base, model_id, model, version, where)
        return _artifact_uri(client, base, version_id, where)


def _registered_model_id(client: httpx.Client, base: str, model: str, where: str) -> str:
    response = _get(client, f"{base}/registered_model", {"name": model}, where)
    if response is None:
        known = sorted(str(m.get("name")) for m in _all(client, f"{base}/registered_models", where))
        raise NotFoundError(f"{where}: the registry has no model {model!r}",
                            f"registered models: {', '.join(known) or 'none'}")
    return str(response["id"])


def _version_id(client: httpx.Client, base: str, model_id: str, model: str, version: str, where: str) -> str:
    versions = _all(client, f"{base}/registered_models/{model_id}/versions", where)
    found = [v for v in versions if v.get("name") == version]
    if not found:
        names = sorted(str(v.get("name")) for v in versions)
        raise NotFoundError(f"{where}: model {model!r} has no version {version!r}",
                            f"its versions: {', '.join(names) or 'none'}")
    return str(found[0]["id"])


def _artifact_uri(client: httpx.Client, base: str, version_id: str, where: str) -> str:
    params = {"orderBy": "CREATE_TIME", "sortOrder": "DESC", "pageSize": PAGE}
    body = _get(client, f"{base}/model_versions/{version_id}/artifacts", params, where) or {}
    for artifact in body.get("items", []):
        if artifact.get("artifactType", MODEL_ARTIFACT) == MODEL_ARTIFACT and artifact.get("uri"):
            return str(artifact["uri"])
    raise NotFoundError(f"{where}: the version has no model artifact with a URI",
                        "register the weights' location on the version (a model artifact's uri)")


def _all(client: httpx.Client, url: str, where: str) -> list[dict[str, Any]]:
    """Every item of a paged list."""
    items: list[dict[str, Any]] = []
    token = ""
    while True:
        params = {"pageSize": PAGE, **({"nextPageToken": token} if token else {})}
        body = _get(client, url, params, where) or {}
        items += body.get("items") or []
        token = str(body.get("nextPageToken") or "")
        if not token or not body.get("items"):
            return items


def _get(client: httpx.Client, url: str, params: dict[str, str], where: str) -> dict[str, Any] | None:
    """The JSON body, or None for a 404 (not found is the caller's to explain)."""
    response = send(client, "GET", url, where, params=params)
    if response.status_code == 404:
        return None
    if response.status_code in (401, 403):
        raise CredentialsError(f"{where}: the model registry denied access (HTTP {response.status_code})",
                               "set MODEL_REGISTRY_TOKEN (a key of the spec's credentials Secret)")
    if response.status_code >= 400:
        raise SourceError(f"{where}: the model registry answered HTTP {response.status_code}: {body_message(response)}")
    try:
        body: dict[str, Any] = response.json()
    except ValueError as exc:
        raise SourceError(f"{where}: the model registry answered something that is not JSON") from exc
    return body
