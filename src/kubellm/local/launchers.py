"""Pick the engine for a spec: check it is installed (fail fast) and return a launcher,
a function from a free port to the :class:`EngineLaunch` of one replica."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from kubellm.local.engines import EngineLaunch, llamacpp_launch, sim_launch, vllm_launch
from kubellm.local.errors import LocalError
from kubellm.local.prereq import Lookups, check_vllm, llamacpp_runtime
from kubellm.spec import LLMService

Launcher = Callable[[int], EngineLaunch]


def check_engine(service: LLMService, lookups: Lookups = Lookups()) -> None:
    """Raise PrerequisiteError when the spec's engine cannot run here; before any download."""
    kind = service.spec.engine.kind
    if kind == "llamacpp":
        llamacpp_runtime(lookups)
    elif kind == "vllm":
        check_vllm(lookups)


def check_serving_mode(service: LLMService) -> None:
    mode = service.spec.serving.mode
    if mode != "standard":
        raise LocalError(
            f"spec.serving.mode {mode} is not supported by kubellm up (one machine runs standard mode only); "
            "set spec.serving.mode to standard to try the model locally, or deploy to a cluster"
        )


def launcher_for(service: LLMService, model: Path | None, host: str, lookups: Lookups = Lookups()) -> Launcher:
    kind = service.spec.engine.kind
    if kind == "sim":
        return lambda port: sim_launch(service, host, port)
    if model is None:
        raise LocalError(f"engine.kind {kind} needs model files and none were found")
    if kind == "llamacpp":
        runtime = llamacpp_runtime(lookups)
        return lambda port: llamacpp_launch(service, model, host, port, runtime)
    return lambda port: vllm_launch(service, model, host, port)
