"""Default container images, pinned by tag (see docs/render.md on digests)."""

from __future__ import annotations

from kubellm import __version__
from kubellm.spec import LLMService

KUBELLM_IMAGE = f"ghcr.io/kubellm/kubellm:{__version__}"
ENGINE_IMAGES = {
    "vllm": "docker.io/vllm/vllm-openai:v0.11.0",
    "llamacpp": "ghcr.io/ggml-org/llama.cpp:server-b6500",
    "sim": KUBELLM_IMAGE,
}


def engine_image(service: LLMService) -> str:
    engine = service.spec.engine
    return engine.image or ENGINE_IMAGES[engine.kind]
