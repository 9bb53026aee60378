"""Hypothesis strategies for request bodies, from an OpenAPI document's JSON Schemas.

``request_bodies(doc, schema)`` mixes: bodies the schema allows (every keyword the documents
in kubellm.gateway.openapi use is understood), the same bodies broken in one place (a
required key dropped, a value of the wrong type, an unknown key), arbitrary JSON and bytes
that are no JSON at all. Schemathesis does this from the same document; it is not installed
here, so these ~80 lines stand in for its generator."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import strategies as st

Schema = dict[str, Any]

# Sizes stay small: the contract is about shapes, and a long prompt only costs time.
TEXT = st.text(max_size=24)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.floats(allow_nan=False, allow_infinity=False) | TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3), max_leaves=8)


def resolve(doc: Schema, schema: Schema) -> Schema:
    while "$ref" in schema:
        schema = doc["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def from_schema(doc: Schema, schema: Schema) -> st.SearchStrategy[Any]:
    """Values *schema* allows."""
    schema = resolve(doc, schema)
    if "const" in schema:
        return st.just(schema["const"])
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    if "oneOf" in schema or "anyOf" in schema:
        return st.one_of([from_schema(doc, s) for s in schema.get("oneOf") or schema["anyOf"]])
    kind = schema.get("type", "object")
    if isinstance(kind, list):
        return st.one_of([from_schema(doc, {**schema, "type": k}) for k in kind])
    return _TYPED[kind](doc, schema)


def _integer(doc: Schema, schema: Schema) -> st.SearchStrategy[Any]:
    # generation lengths stay short so each request is quick; the schema's bounds hold
    low = schema.get("minimum", -(2**31))
    return st.integers(low, schema.get("maximum", max(low, 0) + 64))


def _number(doc: Schema, schema: Schema) -> st.SearchStrategy[Any]:
    return st.floats(schema.get("minimum", -1e6), schema.get("maximum", 1e6), allow_nan=False)


def _array(doc: Schema, schema: Schema) -> st.SearchStrategy[Any]:
    items = from_schema(doc, schema.get("items", {"type": "string"}))
    return st.lists(items, min_size=schema.get("minItems", 0), max_size=schema.get("maxItems", 3))


def _object(doc: Schema, schema: Schema) -> st.SearchStrategy[Any]:
    props = schema.get("properties", {})
    required = {k: from_schema(doc, v) for k, v in props.items() if k in schema.get("required", [])}
    optional = {k: from_schema(doc, v) for k, v in props.items() if k not in required}
    return st.fixed_dictionaries(required, optional=optional)


_TYPED = {
    "string": lambda doc, schema: TEXT,
    "boolean": lambda doc, schema: st.booleans(),
    "null": lambda doc, schema: st.none(),
    "integer": _integer,
    "number": _number,
    "array": _array,
    "object": _object,
}


def broken(doc: Schema, schema: Schema, value: dict[str, Any], data: st.DataObject) -> dict[str, Any]:
    """*value* wrong in one place: a required key gone, a wrong-typed value, or an unknown key."""
    schema = resolve(doc, schema)
    how = data.draw(st.sampled_from(["drop", "retype", "extra"]))
    keys = sorted(value)
    if how == "drop" and schema.get("required"):
        return {k: v for k, v in value.items() if k != data.draw(st.sampled_from(schema["required"]))}
    if how == "retype" and keys:
        return {**value, data.draw(st.sampled_from(keys)): data.draw(JSON_VALUES)}
    return {**value, data.draw(TEXT): data.draw(JSON_VALUES)}


def request_bodies(doc: Schema, schema: Schema, data: st.DataObject) -> bytes:
    """One request body: valid, broken, arbitrary JSON or not JSON."""
    kind = data.draw(st.sampled_from(["valid", "valid", "broken", "broken", "json", "bytes"]))
    if kind == "bytes":
        return data.draw(st.binary(max_size=64))
    if kind == "json":
        return json.dumps(data.draw(JSON_VALUES)).encode()
    value = data.draw(from_schema(doc, schema))
    if kind == "broken":
        value = broken(doc, schema, value, data)
    return json.dumps(value).encode()
