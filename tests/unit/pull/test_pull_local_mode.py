"""Local mode's pull (kubellm.local.model.pull_model) honours spec.model.allowPickle."""

from __future__ import annotations

from pathlib import Path

import pytest

from kubellm.local.errors import ModelNotAvailableError
from kubellm.local.model import pull_model
from kubellm.spec import LLMService, parse_spec


def service(allow_pickle: bool | None) -> LLMService:
    model: dict[str, object] = {"uri": "pvc://weights/old"}
    if allow_pickle is not None:
        model["allowPickle"] = allow_pickle
    return parse_spec({"apiVersion": "kubellm.dev/v1alpha1", "kind": "LLMService", "metadata": {"name": "old"},
                       "spec": {"model": model}})  # fmt: skip


def test_local_pull_refuses_pickle_unless_the_spec_allows_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = tmp_path / "pvc" / "weights" / "old"
    source.mkdir(parents=True)
    (source / "pytorch_model.bin").write_bytes(b"\x80\x04K\x01.")
    (source / "config.json").write_text("{}")
    monkeypatch.setenv("KUBELLM_PVC_ROOT", str(tmp_path / "pvc"))
    for default in (None, False):
        with pytest.raises(ModelNotAvailableError, match="pickle"):
            pull_model(service(default), tmp_path / "refused", None)
        assert not (tmp_path / "refused").exists()
    dest = pull_model(service(True), tmp_path / "m", None)
    assert (dest / "pytorch_model.bin").read_bytes() == b"\x80\x04K\x01."
