"""model-registry://model/version pulls (Kubeflow Model Registry): the version is resolved
through model_registry_standin.py, a STAND-IN for the registry's REST API that follows its
published OpenAPI document (the real server needs a MySQL/PostgreSQL database that cannot
run here; this test validates the stand-in's answers against that document), then the
artifact URI the registry stores (here a local directory) is pulled by its own driver.
Bad input: an unknown model or version names both and lists what exists; a registry that
does not answer fails after the stall timeout with nothing written."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import jsonschema
import pytest
from pull_testkit import HERE, start_announcing, stop

from kubellm.pull import PullOptions, SourceSettings, pull
from kubellm.pull.errors import CredentialsError, NotFoundError, PullInputError, StallError
from kubellm.pull.options import TransferOptions

TOKEN = "registry-token-0001"
API = "/api/model_registry/v1alpha3"
OPENAPI = json.loads((HERE / "data" / "model-registry-openapi.json").read_text())


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    root = tmp_path_factory.mktemp("model-registry")
    (root / "registry.json").write_text("{}")
    proc, url = start_announcing("model_registry_standin.py", str(root), TOKEN)
    try:
        yield url, root
    finally:
        stop(proc)


def weights(tmp_path: Path, name: str, size: int) -> str:
    directory = tmp_path / "store" / name
    directory.mkdir(parents=True)
    (directory / "config.json").write_text("{}")
    (directory / "model.gguf").write_bytes(b"GGUF" + bytes(size))
    return f"file://{directory}"


def register(root: Path, models: dict[str, dict[str, str]]) -> None:
    (root / "registry.json").write_text(json.dumps(models))


def settings(url: str, token: str | None = TOKEN) -> SourceSettings:
    return SourceSettings(model_registry_url=url, model_registry_token=token)


def test_a_version_resolves_to_its_stored_uri_and_is_pulled(registry: tuple[str, Path], tmp_path: Path) -> None:
    url, root = registry
    register(root, {"llama": {"v1": weights(tmp_path, "v1", 10), "v2": weights(tmp_path, "v2", 20), "v3": weights(tmp_path, "v3", 30)},
                    "mistral": {"v1": weights(tmp_path, "m1", 5)}})
    result = pull("model-registry://llama/v3", tmp_path / "out", PullOptions(), settings(url))
    assert result.files == 2 and (tmp_path / "out" / "model.gguf").stat().st_size == 34  # v3: the third page's version
    host_port = url.removeprefix("http://")
    plain = SourceSettings(model_registry_url=host_port, model_registry_scheme="http", model_registry_token=TOKEN)
    assert pull("model-registry://mistral/v1", tmp_path / "m", PullOptions(), plain).files == 2


def test_unknown_model_or_version_names_both_and_lists_what_exists(registry: tuple[str, Path], tmp_path: Path) -> None:
    url, root = registry
    register(root, {"llama": {"v1": weights(tmp_path, "v1", 1), "v2": weights(tmp_path, "v2", 1), "v3": weights(tmp_path, "v3", 1)},
                    "mistral": {"v1": weights(tmp_path, "m1", 1)}})
    with pytest.raises(NotFoundError, match=r"model 'llama' has no version 'v9'; its versions: v1, v2, v3"):
        pull("model-registry://llama/v9", tmp_path / "a", PullOptions(), settings(url))
    with pytest.raises(NotFoundError, match=r"no model 'gemma'; registered models: llama, mistral"):
        pull("model-registry://gemma/v1", tmp_path / "b", PullOptions(), settings(url))
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_credentials_and_address_are_required(registry: tuple[str, Path], tmp_path: Path) -> None:
    url, root = registry
    register(root, {"llama": {"v1": weights(tmp_path, "v1", 1)}})
    with pytest.raises(CredentialsError, match="denied access.*MODEL_REGISTRY_TOKEN"):
        pull("model-registry://llama/v1", tmp_path / "a", PullOptions(), settings(url, token="wrong"))
    with pytest.raises(PullInputError, match="MODEL_REGISTRY_BASE_URL"):
        pull("model-registry://llama/v1", tmp_path / "a", PullOptions(), SourceSettings())


def test_token_and_address_come_from_the_credentials_secret_files(registry: tuple[str, Path], tmp_path: Path) -> None:
    """In the cluster the loader Job mounts the spec's credentials Secret as files."""
    url, root = registry
    register(root, {"llama": {"v1": weights(tmp_path, "v1", 7)}})
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "MODEL_REGISTRY_BASE_URL").write_text(url + "\n")
    (secret / "MODEL_REGISTRY_TOKEN").write_text(TOKEN + "\n")
    from_files = SourceSettings.from_env({"KUBELLM_CREDENTIALS_DIR": str(secret)})
    assert pull("model-registry://llama/v1", tmp_path / "out", PullOptions(), from_files).files == 2


def test_an_unresponsive_registry_stalls_out_and_writes_nothing(tmp_path: Path) -> None:
    with socket.socket() as silent:  # accepts connections (the kernel does) and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        options = PullOptions(transfer=TransferOptions(stall_timeout_s=1.0, connect_timeout_s=1.0, retries=0))
        started = time.monotonic()
        with pytest.raises(StallError, match="model-registry://llama/v1: stalled"):
            pull("model-registry://llama/v1", tmp_path / "cache" / "llama", options, settings(url))
        assert 0.9 < time.monotonic() - started < 10
    assert not (tmp_path / "cache").exists()


def _validate(value: object, schema: str) -> None:
    jsonschema.validate(value, {"$ref": f"#/components/schemas/{schema}", "components": OPENAPI["components"]})


def test_the_standin_answers_as_the_published_openapi_document_says(registry: tuple[str, Path], tmp_path: Path) -> None:
    url, root = registry
    register(root, {"llama": {"v1": weights(tmp_path, "v1", 1), "v2": weights(tmp_path, "v2", 1)}})
    served = {f"{API}/registered_model", f"{API}/registered_models", f"{API}/registered_models/{{registeredmodelId}}/versions",
              f"{API}/model_versions/{{modelversionId}}/artifacts"}
    assert served == {p for p, item in OPENAPI["paths"].items() if "get" in item}
    with httpx.Client(base_url=url + API, headers={"Authorization": f"Bearer {TOKEN}"}) as client:
        model = client.get("/registered_model", params={"name": "llama"}).json()
        _validate(model, "RegisteredModel")
        _validate(client.get("/registered_models").json(), "RegisteredModelList")
        versions = client.get(f"/registered_models/{model['id']}/versions").json()
        _validate(versions, "ModelVersionList")
        artifacts = client.get(f"/model_versions/{versions['items'][0]['id']}/artifacts").json()
        _validate({**artifacts, "items": []}, "ArtifactList")
        _validate(artifacts["items"][0], "ModelArtifact")  # Artifact is a oneOf by discriminator
        missing = client.get("/registered_model", params={"name": "nope"})
        assert missing.status_code == 404
        _validate(missing.json(), "Error")
