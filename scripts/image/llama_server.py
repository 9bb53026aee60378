#!/opt/kubellm/bin/python
"""/app/llama-server in kubellm's llama.cpp image.

What kubellm renders for a llamacpp engine runs ``/app/llama-server`` with llama.cpp's
own server flags (the public ``ghcr.io/ggml-org/llama.cpp:server`` image's command). This
image serves the model with llama-cpp-python's OpenAI server instead, through
``kubellm.local.llamacpp_server`` (which adds /health and vLLM-named /metrics, as in local
mode), so the flags are translated here; anything not listed passes through unchanged.
"""

from __future__ import annotations

import os
import sys

RENAMED = {"--alias": "--model_alias", "--ctx-size": "--n_ctx", "--threads": "--n_threads",
           "--n-gpu-layers": "--n_gpu_layers", "-m": "--model", "-c": "--n_ctx", "-t": "--n_threads", "-ngl": "--n_gpu_layers"}
DROPPED_FLAGS = {"--metrics"}
"""/metrics is always served."""
DROPPED_WITH_VALUE = {"--parallel", "-np"}
"""llama-cpp-python serves one request at a time: no slots to size."""


def translate(argv: list[str]) -> list[str]:
    """llama-server's arguments as llama_cpp.server's (``--flag=value`` forms included)."""
    out: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
            continue
        flag, eq, value = arg.partition("=")
        if flag in DROPPED_FLAGS:
            continue
        if flag in DROPPED_WITH_VALUE:
            skip = not eq
            continue
        flag = RENAMED.get(flag, flag)
        out.append(f"{flag}={value}" if eq else flag)
    return out


def main() -> None:
    argv = [sys.executable, "-m", "kubellm.local.llamacpp_server", *translate(sys.argv[1:])]
    os.execv(sys.executable, argv)


if __name__ == "__main__":
    main()
