"""Is the engine the spec asks for installed here? Fail fast, naming what to install.

Lookups are injected (``which``, ``has_module``, ``has_gpu``) so the decision is tested
without uninstalling anything.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass

from kubellm.local.engines import LlamaRuntime
from kubellm.local.errors import PrerequisiteError

# Modules llama-cpp-python's server imports beyond llama_cpp itself (its [server] extra).
_LLAMA_SERVER_MODULES = ("llama_cpp", "uvicorn", "fastapi", "sse_starlette", "starlette_context", "pydantic_settings")

LLAMACPP_HINT = (
    "engine.kind llamacpp needs llama.cpp's OpenAI-compatible server, and none is installed here. "
    "Install it with:  pip install 'llama-cpp-python[server]'  "
    "(or put a llama-server binary from https://github.com/ggml-org/llama.cpp on PATH)"
)


def _has_module(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


def _has_nvidia_gpu() -> bool:
    return os.path.exists("/dev/nvidia0") or os.path.exists("/dev/nvidiactl")


@dataclass(frozen=True)
class Lookups:
    which: Callable[[str], str | None] = shutil.which
    has_module: Callable[[str], bool] = _has_module
    has_gpu: Callable[[], bool] = _has_nvidia_gpu


def llamacpp_runtime(lookups: Lookups = Lookups()) -> LlamaRuntime:
    """The llama.cpp server to run: the Python package's, else a llama-server binary."""
    if all(lookups.has_module(m) for m in _LLAMA_SERVER_MODULES):
        return "llama-cpp-python"
    if lookups.which("llama-server"):
        return "llama-server"
    raise PrerequisiteError(LLAMACPP_HINT)


def check_vllm(lookups: Lookups = Lookups()) -> None:
    """vLLM needs its CLI and an NVIDIA GPU; say which is missing and what to use instead."""
    if not lookups.which("vllm"):
        raise PrerequisiteError(
            "engine.kind vllm needs vLLM, which is not installed here. Install it with:  pip install vllm  "
            "(it needs an NVIDIA GPU); without a GPU, use engine.kind llamacpp with a GGUF model, "
            "or engine.kind sim to try kubellm with no model at all"
        )
    if not lookups.has_gpu():
        raise PrerequisiteError(
            "engine.kind vllm needs an NVIDIA GPU and none was found (/dev/nvidia0 is missing). "
            "Run on a machine with a GPU and its driver, or use engine.kind llamacpp with a GGUF model on CPU"
        )
