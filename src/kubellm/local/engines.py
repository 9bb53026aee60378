"""The command line of each engine kind, as data: pure, so it is tested without running.

An :class:`EngineLaunch` says how to start one replica on a port and how to tell it is
ready and where its metrics are. Which binary runs llama.cpp (the ``llama-cpp-python``
server or a ``llama-server`` binary) is decided by :mod:`kubellm.local.prereq`.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from kubellm.spec import LLMService

LlamaRuntime = Literal["llama-cpp-python", "llama-server"]


@dataclass(frozen=True)
class EngineLaunch:
    argv: tuple[str, ...]
    ready_path: str
    """GET path that answers 200 once the engine serves."""
    metrics_path: str | None
    """GET path of Prometheus metrics; None when the engine exports none."""
    ready_timeout_s: float
    env: dict[str, str] = field(default_factory=dict)


def sim_launch(service: LLMService, host: str, port: int) -> EngineLaunch:
    spec = service.spec
    argv = [sys.executable, "-m", "kubellm.cli.main", "sim", "--host", host, "--port", str(port),
            "--model", spec.model.served_name, "--profile", spec.engine.sim.profile]
    if spec.engine.sim.fixed_ttft_ms is not None and spec.engine.sim.fixed_tpot_ms is not None:
        argv += ["--fixed-ttft-ms", str(spec.engine.sim.fixed_ttft_ms),
                 "--fixed-tpot-ms", str(spec.engine.sim.fixed_tpot_ms)]
    argv += _optional(("--max-model-len", spec.engine.max_model_len), ("--max-num-seqs", spec.engine.max_num_seqs),
                      ("--max-num-batched-tokens", spec.engine.max_num_batched_tokens))
    return EngineLaunch(tuple(argv + list(spec.engine.extra_args)), "/health", "/metrics", 60.0)


def llamacpp_launch(service: LLMService, model: Path, host: str, port: int, runtime: LlamaRuntime) -> EngineLaunch:
    spec = service.spec
    threads = spec.engine.llamacpp.threads or max(1, (os.cpu_count() or 1))
    if runtime == "llama-cpp-python":
        # llama-cpp-python's own server, wrapped to add /health and /metrics (see the module).
        argv = [sys.executable, "-m", "kubellm.local.llamacpp_server", "--model", str(model), "--host", host,
                "--port", str(port), "--model_alias", spec.model.served_name, "--n_threads", str(threads),
                "--n_gpu_layers", str(spec.engine.llamacpp.n_gpu_layers)]
        argv += _optional(("--n_ctx", spec.engine.max_model_len))
        return EngineLaunch(tuple(argv + list(spec.engine.extra_args)), "/health", "/metrics", 120.0)
    argv = ["llama-server", "--model", str(model), "--host", host, "--port", str(port),
            "--alias", spec.model.served_name, "--threads", str(threads), "--metrics",
            "--n-gpu-layers", str(spec.engine.llamacpp.n_gpu_layers)]
    argv += _optional(("--ctx-size", spec.engine.max_model_len), ("--parallel", spec.engine.max_num_seqs))
    return EngineLaunch(tuple(argv + list(spec.engine.extra_args)), "/health", "/metrics", 120.0)


def vllm_launch(service: LLMService, model: Path, host: str, port: int) -> EngineLaunch:
    spec = service.spec
    engine = spec.engine
    argv = ["vllm", "serve", str(model), "--host", host, "--port", str(port),
            "--served-model-name", spec.model.served_name, "--dtype", engine.dtype,
            "--tensor-parallel-size", str(engine.tensor_parallel_size)]
    argv += _optional(("--max-model-len", engine.max_model_len), ("--max-num-seqs", engine.max_num_seqs),
                      ("--max-num-batched-tokens", engine.max_num_batched_tokens),
                      ("--gpu-memory-utilization", engine.gpu_memory_utilization),
                      ("--quantization", engine.quantization))
    if engine.enable_prefix_caching:
        argv.append("--enable-prefix-caching")
    # Loading weights and compiling CUDA graphs takes minutes on a cold cache.
    return EngineLaunch(tuple(argv + list(engine.extra_args)), "/health", "/metrics", 900.0)


def _optional(*pairs: tuple[str, object | None]) -> list[str]:
    out: list[str] = []
    for flag, value in pairs:
        if value is not None:
            out += [flag, str(value)]
    return out
