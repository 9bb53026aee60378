"""The container images kubellm renders, pinned by tag (see docs/render.md on digests).

One setting names kubellm's own image everywhere it runs (the operator, loader Jobs and
their waiters, simulator engines, the gateway) and one names the llama.cpp engine's:
``Images``. `kubellm render`, `apply` and `install` take them as ``--image`` and
``--llamacpp-image``; `kubellm install` hands them to the operator's Deployment as the
environment variables below, and the operator renders with what it reads there, so what
it deploys runs the image it runs itself. A spec's own ``engine.image`` wins over both.
"""

from __future__ import annotations

import re
from pydantic import BaseModel, ConfigDict, field_validator

from kubellm import __version__
from kubellm.render.errors import ImageReferenceError
from kubellm.spec import LLMService

KUBELLM_IMAGE = f"ghcr.io/kubellm/kubellm:{__version__}"
LLAMACPP_IMAGE = "ghcr.io/ggml-org/llama.cpp:server-b6500"
VLLM_IMAGE = "docker.io/vllm/vllm-openai:v0.11.0"
ENV_KUBELLM = "KUBELLM_IMAGE"
ENV_LLAMACPP = "KUBELLM_LLAMACPP_IMAGE"

# An image reference as the container runtimes parse it: [registry[:port]/]path[:tag][@digest],
# lower-case path components. Checked here so a typo fails at render time, not as an
# InvalidImageName on the node.
_COMPONENT = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*"
_REFERENCE = re.compile(
    rf"^(?:[A-Za-z0-9.-]+(?::[0-9]+)?/)?{_COMPONENT}(?:/{_COMPONENT})*"
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha256:[a-f0-9]{64})?$"
)


def check_reference(image: str) -> str:
    """*image*, or ImageReferenceError (raised through pydantic as is: it is no ValueError)."""
    if not _REFERENCE.match(image):
        raise ImageReferenceError(
            f"{image!r} is not an image reference: use [REGISTRY/]REPOSITORY[:TAG][@sha256:DIGEST], "
            "lower-case, for example registry.example.com/kubellm:0.1.0"
        )
    return image


class Images(BaseModel):
    """Which images rendered objects run."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kubellm: str = KUBELLM_IMAGE
    """kubellm itself: operator, loader, simulator engine, gateway."""
    llamacpp: str = LLAMACPP_IMAGE
    """The llama.cpp engine (an image whose /app/llama-server takes llama-server's flags)."""

    @field_validator("kubellm", "llamacpp")
    @classmethod
    def _reference(cls, image: str) -> str:
        return check_reference(image)


DEFAULT_IMAGES = Images()


def engine_image(service: LLMService, images: Images = DEFAULT_IMAGES) -> str:
    engine = service.spec.engine
    if engine.image:
        return engine.image
    return {"vllm": VLLM_IMAGE, "llamacpp": images.llamacpp, "sim": images.kubellm}[engine.kind]


def images_from(kubellm: str | None = None, llamacpp: str | None = None) -> Images:
    """Images with the given overrides (None keeps the default)."""
    fields = {key: value for key, value in (("kubellm", kubellm), ("llamacpp", llamacpp)) if value}
    return Images(**fields)


def images_env(images: Images) -> list[dict[str, str]]:
    """Container env that hands *images* to `kubellm operator` (its --image and
    --llamacpp-image options read these variables)."""
    return [{"name": ENV_KUBELLM, "value": images.kubellm}, {"name": ENV_LLAMACPP, "value": images.llamacpp}]
