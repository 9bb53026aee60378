"""Engine command lines built from each serving unit's own settings."""

from __future__ import annotations

from typing import Any

from kubellm.render import render
from kubellm.spec import parse_spec

MAIN_URI = "https://models.example.com/qwen2.5-1.5b-instruct-q4_k_m.gguf"
CANARY_URI = "https://models.example.com/qwen2.5-1.5b-instruct-q8_0.gguf"


def _llamacpp_canary(canary_uri: str, **model: Any) -> dict[str, Any]:
    return {
        "apiVersion": "kubellm.dev/v1alpha1",
        "kind": "LLMService",
        "metadata": {"name": "qwen", "namespace": "llm"},
        "spec": {
            "model": {"uri": MAIN_URI, **model},
            "engine": {"kind": "llamacpp"},
            "resources": {"cpu": "4", "memory": "6Gi"},
            "rollout": {"strategy": "gatewayCanary", "canary": {"uri": canary_uri, "weight": 20}},
        },
    }


def _model_args(data: dict[str, Any]) -> dict[str, str]:
    """Deployment name -> the value of its engine container's --model."""
    found = {}
    for obj in render(parse_spec(data)):
        if obj["kind"] == "Deployment":
            engine = obj["spec"]["template"]["spec"]["containers"][0]
            args = engine["args"]
            found[obj["metadata"]["name"]] = args[args.index("--model") + 1]
    return found


def test_llamacpp_gateway_canary_loads_the_canary_uris_own_gguf_file() -> None:
    paths = _model_args(_llamacpp_canary(CANARY_URI))
    assert set(paths) == {"qwen", "qwen-canary"}
    assert paths["qwen"].endswith("/qwen2.5-1.5b-instruct-q4_k_m.gguf")
    assert paths["qwen-canary"].endswith("/qwen2.5-1.5b-instruct-q8_0.gguf")
    # each file lies under its own URI's cache directory
    assert paths["qwen"].rsplit("/", 2)[-2] != paths["qwen-canary"].rsplit("/", 2)[-2]


def test_llamacpp_canary_uri_without_a_gguf_name_falls_back_to_the_main_models_file() -> None:
    """The canary's loader gets no allowPatterns, so a canary repo URI names no file: the
    main model's file name (from its allowPatterns) is the only name there is."""
    data = _llamacpp_canary("hf://org/qwen-gguf@v2")
    data["spec"]["model"] = {"uri": "hf://org/qwen-gguf@v1", "allowPatterns": ["qwen-q4_k_m.gguf"]}
    paths = _model_args(data)
    assert paths["qwen"].endswith("/qwen-q4_k_m.gguf")
    assert paths["qwen-canary"].endswith("/qwen-q4_k_m.gguf")
