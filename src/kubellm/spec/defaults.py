"""Defaults that depend on other fields (the engine kind, the model URI).

Applied to the raw mapping before validation, so the validated spec is fully resolved and
every consumer reads one value (no "auto" left for each of them to interpret). Only keys
whose camelCase alias equals the Python name are touched, so both spellings work.
"""

from __future__ import annotations

from typing import Any

from kubellm.spec.uri import scheme_of

# engine kind -> (accelerators per pod, cpu, memory)
ENGINE_RESOURCE_DEFAULTS: dict[str, tuple[int, str, str]] = {
    "vllm": (1, "8", "32Gi"),
    "llamacpp": (0, "4", "8Gi"),
    "sim": (0, "500m", "512Mi"),
}

CACHE_KIND_BY_SCHEME = {"pvc": "prefilled", "sim": "none"}


def _field(obj: Any, name: str) -> Any:
    if isinstance(obj, dict):
        return obj.get(name)
    return getattr(obj, name, None)


def _with(mapping: Any, key: str, value: Any) -> Any:
    """A copy of *mapping* with *key* set when absent; non-mappings are left as given."""
    if mapping is None:
        mapping = {}
    if not isinstance(mapping, dict) or key in mapping:
        return mapping
    return {**mapping, key: value}


def engine_kind_of(data: dict[str, Any]) -> str:
    kind = _field(data.get("engine"), "kind")
    return kind if isinstance(kind, str) else "vllm"


def fill_dependent_defaults(data: Any) -> Any:
    """Fill resource, cache and format defaults in a raw spec mapping."""
    if not isinstance(data, dict):
        return data
    kind = engine_kind_of(data)
    count, cpu, memory = ENGINE_RESOURCE_DEFAULTS.get(kind, ENGINE_RESOURCE_DEFAULTS["vllm"])
    resources = _with(_with(data.get("resources"), "cpu", cpu), "memory", memory)
    if isinstance(resources, dict):
        resources = {**resources, "accelerator": _with(resources.get("accelerator"), "count", count)}
    uri = _field(data.get("model"), "uri")
    uri = uri if isinstance(uri, str) else ""
    cache = _with(data.get("cache"), "kind", CACHE_KIND_BY_SCHEME.get(scheme_of(uri), "pvc"))
    is_gguf = uri.lower().endswith(".gguf") or kind == "llamacpp"
    filled = {**data, "resources": resources, "cache": cache}
    if isinstance(data.get("model"), dict):
        filled["model"] = _with(data["model"], "format", "gguf" if is_gguf else "safetensors")
    return filled
