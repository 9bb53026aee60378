"""models:/name/version pulls: the version is resolved through mlflow_standin.py, a STAND-IN for
the MLflow registry REST API (the real server package is too heavy here), then the artifact
URI it returns (here a local path) is pulled by its own driver."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from pull_testkit import HERE, stop

from kubellm.pull import PullOptions, SourceSettings, pull
from kubellm.pull.errors import NotFoundError, PullInputError


@pytest.fixture(scope="module")
def mlflow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    root = tmp_path_factory.mktemp("mlflow")
    (root / "registry.json").write_text("{}")
    proc = subprocess.Popen([sys.executable, str(HERE / "mlflow_standin.py"), str(root)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    try:
        assert line.startswith("PORT "), line
        yield f"http://127.0.0.1:{line.split()[1]}", root
    finally:
        stop(proc)


def test_version_and_alias_resolve_to_the_artifacts(mlflow: tuple[str, Path], tmp_path: Path) -> None:
    url, root = mlflow
    artifacts = tmp_path / "artifacts" / "model"
    artifacts.mkdir(parents=True)
    (artifacts / "MLmodel").write_text("flavors: {}")
    (artifacts / "model.gguf").write_bytes(b"GGUF" + bytes(100))
    registry = {"chat": {"versions": {"3": f"file://{artifacts}"}, "aliases": {"champion": "3"}}}
    (root / "registry.json").write_text(json.dumps(registry))
    settings = SourceSettings(mlflow_tracking_uri=url)
    result = pull("models:/chat/3", tmp_path / "m", PullOptions(), settings)
    assert result.files == 2 and (tmp_path / "m/model.gguf").stat().st_size == 104
    assert pull("models:/chat/@champion", tmp_path / "a", PullOptions(), settings).files == 2


def test_unknown_version_and_missing_registry_address(mlflow: tuple[str, Path], tmp_path: Path) -> None:
    url, _ = mlflow
    with pytest.raises(NotFoundError, match="chat/9.*not found"):
        pull("models:/chat/9", tmp_path / "m", PullOptions(), SourceSettings(mlflow_tracking_uri=url))
    with pytest.raises(PullInputError, match="MLFLOW_TRACKING_URI"):
        pull("models:/chat/1", tmp_path / "m", PullOptions(), SourceSettings())
