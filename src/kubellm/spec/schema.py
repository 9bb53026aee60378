"""JSON Schema of the spec and the LLMService CustomResourceDefinition, from the same models.

The CRD needs a *structural* OpenAPI v3.0 schema: no ``$ref``, every node typed, nullable
instead of ``anyOf [X, null]``, boolean ``exclusiveMinimum``. ``structural`` converts
pydantic's JSON Schema (2020-12) into that form. Defaults are dropped from the CRD on
purpose: several defaults depend on other fields (see ``defaults.py``), so the API server
must not fill them in; the renderer resolves them through the models.
"""

from __future__ import annotations

from typing import Any

from kubellm.spec.service import API_VERSION, KIND, LLMService

GROUP, VERSION = API_VERSION.split("/")
PLURAL = "llmservices"

_DROPPED = {"title", "default", "propertyNames", "$defs", "examples"}


def json_schema() -> dict[str, Any]:
    """JSON Schema (2020-12) of an LLMService document, camelCase keys."""
    return LLMService.model_json_schema(by_alias=True, mode="validation")


def _resolve(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in node:
        target = defs[node["$ref"].rsplit("/", 1)[-1]]
        merged = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
        return _resolve(merged, defs)
    return node


def _without_null(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    """``anyOf: [X, {type: null}]`` becomes X with ``nullable: true``."""
    options = [_resolve(option, defs) for option in node["anyOf"]]
    non_null = [option for option in options if option.get("type") != "null"]
    if len(non_null) != 1:
        raise ValueError(f"cannot express anyOf {node['anyOf']} structurally")
    rest = {k: v for k, v in node.items() if k != "anyOf"}
    return {**non_null[0], **rest, "nullable": True}


def _convert_bounds(out: dict[str, Any]) -> None:
    for bound, plain in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        if isinstance(out.get(bound), (int, float)) and not isinstance(out[bound], bool):
            out[plain] = out.pop(bound)
            out[bound] = True


def structural(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    """Convert one JSON Schema node (and its children) to a structural OpenAPI v3.0 node."""
    node = _resolve(node, defs)
    if "anyOf" in node:
        node = _without_null(node, defs)
    if "const" in node:
        node = {**{k: v for k, v in node.items() if k != "const"}, "enum": [node["const"]]}
    if "enum" in node and "type" not in node:
        node = {**node, "type": "string"}
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROPPED:
            continue
        if key == "properties":
            out[key] = {name: structural(child, defs) for name, child in value.items()}
        elif key in ("items", "additionalProperties") and isinstance(value, dict):
            out[key] = structural(value, defs)
        else:
            out[key] = value
    if "prefixItems" in out:
        raise ValueError("fixed-length tuples cannot be expressed in a CRD schema")
    if out.get("type") == "object" and "additionalProperties" not in out and "properties" not in out:
        out["x-kubernetes-preserve-unknown-fields"] = True
    _convert_bounds(out)
    return out


def _spec_schema() -> dict[str, Any]:
    schema = json_schema()
    defs = schema.get("$defs", {})
    return structural(schema["properties"]["spec"], defs)


_PRINTER_COLUMNS = [
    {"name": "Model", "type": "string", "jsonPath": ".spec.model.servedName"},
    {"name": "Engine", "type": "string", "jsonPath": ".spec.engine.kind"},
    {"name": "Mode", "type": "string", "jsonPath": ".spec.serving.mode"},
    {"name": "Ready", "type": "integer", "jsonPath": ".status.readyReplicas"},
    {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
]

_STATUS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "Observed state, written by the kubellm operator.",
    "x-kubernetes-preserve-unknown-fields": True,
    "properties": {
        "phase": {"type": "string"},
        "readyReplicas": {"type": "integer"},
        "observedGeneration": {"type": "integer"},
        "conditions": {
            "type": "array",
            "items": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
        },
    },
}


def crd() -> dict[str, Any]:
    """The CustomResourceDefinition the operator installs for LLMService."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{PLURAL}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {"kind": KIND, "listKind": f"{KIND}List", "plural": PLURAL, "singular": "llmservice", "shortNames": ["llms"]},
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": _PRINTER_COLUMNS,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "required": ["spec"],
                            "properties": {
                                "apiVersion": {"type": "string"},
                                "kind": {"type": "string"},
                                "metadata": {"type": "object"},
                                "spec": _spec_schema(),
                                "status": _STATUS_SCHEMA,
                            },
                        }
                    },
                }
            ],
        },
    }
