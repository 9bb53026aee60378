"""The HTTP contracts of the gateway and of the simulator (`kubellm sim`), as OpenAPI 3.1.

Both serve the OpenAI API (the simulator as vLLM does), so one set of schemas describes the
requests they take and the error object every 4xx and 5xx carries; the documents differ in
their routes. Published in docs/openapi/ (``python -m kubellm.gateway.openapi DIR`` writes
them); the tests compare each document's routes with the routes the real applications
register, and fuzz every route from its request schema.

Request schemas describe what a well-formed request is; both servers pass fields they do
not know through (``additionalProperties: true``), as OpenAI clients send new ones first.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from kubellm import __version__

Schema = dict[str, Any]
OPENAPI = "3.1.0"


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _tokens(minimum: int = 1) -> Schema:
    return {"type": "integer", "minimum": minimum}


def _stop() -> Schema:
    return {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}, "maxItems": 4}, {"type": "null"}]}


SAMPLING: Schema = {
    "max_tokens": _tokens(), "temperature": {"type": "number", "minimum": 0, "maximum": 2},
    "top_p": {"type": "number", "minimum": 0, "maximum": 1}, "n": {"type": "integer", "minimum": 1, "maximum": 1},
    "stream": {"type": "boolean"}, "stream_options": {"type": "object", "properties": {"include_usage": {"type": "boolean"}}},
    "stop": _stop(), "seed": {"type": "integer"}, "user": {"type": "string"},
}

SCHEMAS: dict[str, Schema] = {
    "Error": {
        "type": "object", "required": ["error"],
        "properties": {"error": {"type": "object", "required": ["message", "type"], "properties": {
            "message": {"type": "string"}, "type": {"type": "string"}, "param": {"type": ["string", "null"]},
            "code": {"type": ["string", "integer", "null"]}}}},
    },
    "ChatMessage": {
        "type": "object", "required": ["role"], "additionalProperties": True,
        "properties": {"role": {"enum": ["system", "user", "assistant", "tool", "developer"]},
                       "content": {"oneOf": [{"type": "string"}, {"type": "null"}, {"type": "array", "items": {
                           "type": "object", "required": ["type", "text"],
                           "properties": {"type": {"const": "text"}, "text": {"type": "string"}}}}]},
                       "name": {"type": "string"}},
    },
    "ChatCompletionRequest": {
        "type": "object", "required": ["model", "messages"], "additionalProperties": True,
        "properties": {"model": {"type": "string"}, "messages": {"type": "array", "minItems": 1, "items": ref("ChatMessage")},
                       "max_completion_tokens": _tokens(), **SAMPLING},
    },
    "CompletionRequest": {
        "type": "object", "required": ["model", "prompt"], "additionalProperties": True,
        "properties": {"model": {"type": "string"}, "prompt": {"oneOf": [
            {"type": "string"}, {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 1},
            {"type": "array", "items": {"type": "integer", "minimum": 0}, "minItems": 1}]},
            "echo": {"type": "boolean"}, **SAMPLING},
    },
    "EmbeddingRequest": {
        "type": "object", "required": ["model", "input"], "additionalProperties": True,
        "properties": {"model": {"type": "string"}, "input": {"oneOf": [
            {"type": "string"}, {"type": "array", "items": {"type": "string"}, "minItems": 1}]},
            "encoding_format": {"enum": ["float", "base64"]}},
    },
    "Completion": {"type": "object", "required": ["id", "object", "model", "choices"], "additionalProperties": True,
                   "properties": {"id": {"type": "string"}, "object": {"type": "string"}, "model": {"type": "string"},
                                  "choices": {"type": "array"}, "usage": {"type": "object"}}},
    "EmbeddingList": {"type": "object", "required": ["object", "data"], "additionalProperties": True,
                      "properties": {"object": {"const": "list"}, "data": {"type": "array"}}},
    "ModelList": {"type": "object", "required": ["object", "data"], "properties": {
        "object": {"const": "list"}, "data": {"type": "array", "items": {
            "type": "object", "required": ["id", "object"], "additionalProperties": True,
            "properties": {"id": {"type": "string"}, "object": {"const": "model"}}}}}},
    "TokenizeRequest": {"type": "object", "additionalProperties": True, "properties": {
        "model": {"type": "string"}, "prompt": {"type": "string"}, "messages": {"type": "array", "items": ref("ChatMessage")},
        "add_special_tokens": {"type": "boolean"}}},
    "TokenizeResponse": {"type": "object", "required": ["tokens", "count"], "additionalProperties": True, "properties": {
        "tokens": {"type": "array", "items": {"type": "integer"}}, "count": {"type": "integer"},
        "max_model_len": {"type": "integer"}}},
    "DetokenizeRequest": {"type": "object", "required": ["tokens"], "additionalProperties": True, "properties": {
        "model": {"type": "string"}, "tokens": {"type": "array", "items": {"type": "integer", "minimum": 0}}}},
    "DetokenizeResponse": {"type": "object", "required": ["prompt"], "properties": {"prompt": {"type": "string"}}},
    "LoraAdapterRequest": {"type": "object", "required": ["lora_name"], "additionalProperties": True, "properties": {
        "lora_name": {"type": "string"}, "lora_path": {"type": "string"}}},
}


def _json(schema: Schema, description: str = "") -> Schema:
    return {"description": description or "OK", "content": {"application/json": {"schema": schema}}}


def _errors(*statuses: str) -> dict[str, Schema]:
    """Every error answer carries the OpenAI error object."""
    return {status: _json(ref("Error"), "an OpenAI error object") for status in statuses}


def generate(summary: str, request: str, response: Schema, errors: tuple[str, ...]) -> Schema:
    """A generation route: JSON, or Server-Sent Events with ``stream: true``."""
    ok = _json(response, "the result, or with stream: true a text/event-stream of chunks ending in data: [DONE]")
    ok["content"]["text/event-stream"] = {"schema": {"type": "string"}}
    return {"post": {"summary": summary, "requestBody": {"required": True, "content": {"application/json": {"schema": ref(request)}}},
                     "responses": {"200": ok, **_errors(*errors)}}}


def _get(summary: str, response: Schema, content: str = "application/json", errors: tuple[str, ...] = ()) -> Schema:
    return {"get": {"summary": summary, "responses": {"200": {"description": "OK", "content": {content: {"schema": response}}},
                                                      **_errors(*errors)}}}


# Statuses a client's request can cause (4xx) and what an engine or the gateway answers
# when it cannot serve (5xx); the fuzz tests require that no request causes a 5xx.
GATEWAY_ERRORS = ("400", "401", "403", "404", "405", "413", "429", "502", "503", "504")
SIM_ERRORS = ("400", "404", "413", "503")


def gateway_paths() -> dict[str, Schema]:
    return {
        "/v1/chat/completions": generate("Chat completion, routed to an engine of the model", "ChatCompletionRequest",
                                         ref("Completion"), GATEWAY_ERRORS),
        "/v1/completions": generate("Text completion, routed to an engine of the model", "CompletionRequest",
                                    ref("Completion"), GATEWAY_ERRORS),
        "/v1/embeddings": generate("Embeddings, routed to an engine of the model", "EmbeddingRequest",
                                   ref("EmbeddingList"), GATEWAY_ERRORS),
        "/v1/models": _get("The models this client may use", ref("ModelList"), errors=("401", "403")),
        "/health": _get("The gateway process is up", {"type": "object", "properties": {"status": {"const": "ok"}}}),
        "/ready": _get("Ready to route (503 while draining)", {"type": "object", "properties": {"ready": {"type": "boolean"}}}),
        "/metrics": _get("Prometheus metrics", {"type": "string"}, "text/plain"),
    }


def sim_paths() -> dict[str, Schema]:
    plain = {"type": "string"}
    return {
        "/v1/chat/completions": generate("Chat completion (simulated)", "ChatCompletionRequest", ref("Completion"), SIM_ERRORS),
        "/v1/completions": generate("Text completion (simulated)", "CompletionRequest", ref("Completion"), SIM_ERRORS),
        "/v1/models": _get("The served model and its LoRA adapters", ref("ModelList")),
        "/health": _get("200 once the model is loaded, 503 before", plain, "text/plain"),
        "/ping": _get("Same as /health", plain, "text/plain"),
        "/version": _get("vLLM version reported", {"type": "object", "properties": {"version": {"type": "string"}}}),
        "/metrics": _get("Prometheus metrics under vLLM's names", plain, "text/plain"),
        "/tokenize": {"post": {"summary": "Token ids of a prompt or chat", "requestBody": {"required": True, "content": {
            "application/json": {"schema": ref("TokenizeRequest")}}}, "responses": {"200": _json(ref("TokenizeResponse")), **_errors("400")}}},
        "/detokenize": {"post": {"summary": "Text of token ids", "requestBody": {"required": True, "content": {
            "application/json": {"schema": ref("DetokenizeRequest")}}}, "responses": {"200": _json(ref("DetokenizeResponse")), **_errors("400")}}},
        "/v1/load_lora_adapter": {"post": {"summary": "Serve a LoRA adapter", "requestBody": {"required": True, "content": {
            "application/json": {"schema": ref("LoraAdapterRequest")}}},
            "responses": {"200": {"description": "loaded", "content": {"text/plain": {"schema": plain}}}, **_errors("400", "404")}}},
        "/v1/unload_lora_adapter": {"post": {"summary": "Stop serving a LoRA adapter", "requestBody": {"required": True, "content": {
            "application/json": {"schema": ref("LoraAdapterRequest")}}},
            "responses": {"200": {"description": "unloaded", "content": {"text/plain": {"schema": plain}}}, **_errors("400", "404")}}},
    }


def document(title: str, description: str, paths: dict[str, Schema]) -> Schema:
    return {"openapi": OPENAPI, "info": {"title": title, "version": __version__, "description": description},
            "paths": paths, "components": {"schemas": SCHEMAS}}


def gateway_document() -> Schema:
    return document("kubellm gateway", "OpenAI-compatible router in front of the engines of each model.", gateway_paths())


def sim_document() -> Schema:
    return document("kubellm sim", "vLLM-compatible engine simulator (kubellm sim).", sim_paths())


DOCUMENTS = {"gateway.json": gateway_document, "sim.json": sim_document}


def render_document(name: str) -> str:
    return json.dumps(DOCUMENTS[name](), indent=2, sort_keys=True) + "\n"


def main(argv: list[str]) -> None:
    """Write every document into the directory *argv[0]* (docs/openapi)."""
    directory = Path(argv[0])
    for name in DOCUMENTS:
        (directory / name).write_text(render_document(name), encoding="utf-8")


if __name__ == "__main__":
    main(sys.argv[1:])
