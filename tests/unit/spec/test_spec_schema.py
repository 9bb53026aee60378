"""The JSON Schema and the CRD come from the models; the CRD is structural and valid."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml

from kubellm.spec.schema import crd, json_schema

EXAMPLES = sorted((Path(__file__).resolve().parents[3] / "examples").glob("*.yaml"))


def walk(node: Any, path: str = "") -> list[tuple[str, dict[str, Any]]]:
    found: list[tuple[str, dict[str, Any]]] = []
    if isinstance(node, dict):
        found.append((path, node))
        for key in ("properties",):
            for name, child in node.get(key, {}).items():
                found += walk(child, f"{path}.{name}")
        for key in ("items", "additionalProperties"):
            if isinstance(node.get(key), dict):
                found += walk(node[key], f"{path}[]")
    return found


def test_crd_validates_as_a_kubernetes_object() -> None:
    kubernetes_validate.validate(crd(), "1.31", strict=True)


def test_crd_schema_is_structural() -> None:
    version = crd()["spec"]["versions"][0]
    assert version["subresources"] == {"status": {}}
    assert {c["name"] for c in version["additionalPrinterColumns"]} >= {"Model", "Engine", "Ready"}
    for path, node in walk(version["schema"]["openAPIV3Schema"]):
        assert "$ref" not in node and "anyOf" not in node and "default" not in node, path
        assert "type" in node or node.get("x-kubernetes-preserve-unknown-fields"), path


def test_examples_validate_against_the_json_schema_and_the_crd_schema() -> None:
    schema = json_schema()
    crd_schema = crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    for path in EXAMPLES:
        data = yaml.safe_load(path.read_text())
        jsonschema.Draft202012Validator(schema).validate(data)
        jsonschema.Draft4Validator(crd_schema).validate(data)


def test_json_schema_rejects_an_unknown_field() -> None:
    data = yaml.safe_load(EXAMPLES[0].read_text())
    data["spec"]["engine"] = {"kindd": "vllm"}
    assert list(jsonschema.Draft202012Validator(json_schema()).iter_errors(data))
