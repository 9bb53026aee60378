"""The LLMService models: defaults, aliases, strictness, cross-field rules with path + hint."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from kubellm.spec import LLMService, SpecError, SpecLoadError, check_target, load_spec, load_spec_text, parse_spec
from kubellm.spec.uri import UriError, parse_model_uri


def doc(spec: dict[str, Any], name: str = "svc") -> dict[str, Any]:
    return {"apiVersion": "kubellm.dev/v1alpha1", "kind": "LLMService", "metadata": {"name": name}, "spec": spec}


def test_a_minimal_spec_gets_production_defaults() -> None:
    service = parse_spec(doc({"model": {"uri": "hf://mistralai/Mistral-7B-Instruct-v0.3"}}))
    spec = service.spec
    assert spec.engine.kind == "vllm" and spec.resources.accelerator.count == 1
    assert spec.cache.kind == "pvc" and spec.model.format == "safetensors"
    assert spec.model.served_name == "Mistral-7B-Instruct-v0.3"
    assert spec.scaling.min_replicas == 1 and not spec.scaling.enabled


@pytest.mark.parametrize(("spec", "expected"), [
    ({"model": {"uri": "sim://tiny"}, "engine": {"kind": "sim"}}, ("none", 0, "500m")),
    ({"model": {"uri": "https://x.example/m.gguf"}, "engine": {"kind": "llamacpp"}}, ("pvc", 0, "4")),
    ({"model": {"uri": "pvc://weights/llama"}}, ("prefilled", 1, "8")),
])
def test_defaults_follow_the_engine_and_the_uri(spec: dict[str, Any], expected: tuple[str, int, str]) -> None:
    s = parse_spec(doc(spec)).spec
    assert (s.cache.kind, s.resources.accelerator.count, s.resources.cpu) == expected


def test_keys_are_camel_case_and_python_names_snake_case() -> None:
    service = parse_spec(doc({"model": {"uri": "hf://a/b", "servedName": "x"}, "engine": {"maxModelLen": 4096}}))
    assert service.spec.engine.max_model_len == 4096
    assert service.to_dict()["spec"]["engine"]["maxModelLen"] == 4096


def test_allow_pickle_defaults_to_false_and_is_documented_as_dangerous() -> None:
    model = parse_spec(doc({"model": {"uri": "hf://a/b"}})).spec.model
    assert model.allow_pickle is False
    assert parse_spec(doc({"model": {"uri": "hf://a/b", "allowPickle": True}})).spec.model.allow_pickle is True
    description = type(model).model_fields["allow_pickle"].description or ""
    assert "arbitrary code" in description and "trust" in description
    with pytest.raises(SpecError):
        parse_spec(doc({"model": {"uri": "hf://a/b", "allowPickle": "sometimes"}}))


def test_models_are_frozen() -> None:
    service = parse_spec(doc({"model": {"uri": "hf://a/b"}}))
    with pytest.raises(ValidationError):
        service.spec.engine.kind = "sim"  # type: ignore[misc]


def test_round_trip_through_dict_is_stable() -> None:
    service = parse_spec(doc({"model": {"uri": "hf://a/b"}, "scaling": {"minReplicas": 2, "maxReplicas": 5}}))
    assert LLMService.model_validate(service.to_dict()) == service


@pytest.mark.parametrize(("spec", "path", "hint_word"), [
    ({"model": {"uri": "hf://a/b"}, "engine": {"tensorParallelSize": 4}}, "spec.engine.tensorParallelSize", "accelerator.count"),
    ({"model": {"uri": "hf://a/b"}, "engine": {"kind": "vllm"}, "resources": {"accelerator": {"count": 0}}}, "spec.resources.accelerator.count", "llamacpp"),
    ({"model": {"uri": "https://x.example/m.gguf"}, "engine": {"kind": "llamacpp"}, "serving": {"mode": "disaggregated", "prefill": {}, "decode": {}}}, "spec.serving.mode", "vllm"),
    ({"model": {"uri": "hf://a/b"}, "scaling": {"scaleToZero": True, "backend": "hpa"}}, "spec.scaling.scaleToZero", "keda"),
    ({"model": {"uri": "hf://a/b"}, "scaling": {"minReplicas": 3, "maxReplicas": 2}}, "spec.scaling.maxReplicas", "3"),
    ({"model": {"uri": "hf://a/b"}, "cache": {"kind": "image"}}, "spec.cache.kind", "oci://"),
    ({"model": {"uri": "sim://x"}}, "spec.model.uri", "sim"),
    ({"model": {"uri": "hf://a/b"}, "serving": {"mode": "disaggregated"}}, "spec.serving.prefill", "prefill"),
    ({"model": {"uri": "hf://a/b"}, "serving": {"mode": "multinode", "multinode": {"nodes": 2}}, "engine": {"tensorParallelSize": 1}}, "spec.engine.tensorParallelSize", "pipelineParallelSize"),
    ({"model": {"uri": "hf://a/b"}, "rollout": {"strategy": "gatewayCanary"}}, "spec.rollout.canary.uri", "canary.uri"),
    ({"model": {"uri": "hf://a/b"}, "engine": {"kind": "sim", "quantization": "awq"}}, "spec.engine.quantization", "vllm"),
    ({"model": {"uri": "hf://a/b"}, "engine": {"bogus": 1}}, "spec.engine.bogus", "spelling"),
    ({"model": {"uri": "hf://a"}}, "spec.model.uri", "hf://"),
])
def test_invalid_specs_name_the_field_and_a_fix(spec: dict[str, Any], path: str, hint_word: str) -> None:
    with pytest.raises(SpecError) as info:
        parse_spec(doc(spec))
    issue = next(i for i in info.value.issues if i.path == path)
    assert hint_word in issue.hint + issue.message


def test_image_volumes_are_gated_on_the_target_version() -> None:
    spec = parse_spec(doc({"model": {"uri": "oci://r.example.com/m/x:v1"}, "cache": {"kind": "image"}})).spec
    assert check_target(spec, "1.31") == []
    assert [i.path for i in check_target(spec, "1.30")] == ["spec.cache.kind"]


@pytest.mark.parametrize(("uri", "scheme", "revision"), [
    ("hf://org/repo@v1.0", "hf", "v1.0"), ("s3://bucket/x/y", "s3", None), ("gs://bucket/x", "gs", None),
    ("az://container/x", "az", None), ("https://h.example/m.gguf", "https", None),
    ("oci://r.example.com/a/b:v2", "oci", "v2"), ("pvc://claim/path", "pvc", None), ("models:/name/3", "models", None),
])
def test_model_uris_parse(uri: str, scheme: str, revision: str | None) -> None:
    parsed = parse_model_uri(uri)
    assert (parsed.scheme, parsed.revision) == (scheme, revision)


@pytest.mark.parametrize("uri", ["ftp://x/y", "hf://onlyorg", "s3://", "oci://UPPER/x", "models:/x", "gs:/b"])
def test_malformed_uris_are_refused(uri: str) -> None:
    with pytest.raises(UriError):
        parse_model_uri(uri)


def test_load_spec_reports_files_it_cannot_use(tmp_path: Path) -> None:
    with pytest.raises(SpecLoadError):
        load_spec(tmp_path / "missing.yaml")
    with pytest.raises(SpecLoadError, match="2 YAML documents"):
        load_spec_text("a: 1\n---\nb: 2\n")
    with pytest.raises(SpecLoadError, match="mapping"):
        load_spec_text("- a\n")
    with pytest.raises(SpecLoadError, match="not valid YAML"):
        load_spec_text("a: [\n")
