"""The inference engine and the options people tune: `spec.engine`."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from kubellm.spec.base import SpecModel
from kubellm.spec.types import PositiveInt

EngineKind = Literal["vllm", "llamacpp", "sim"]
# Seconds an engine of each kind may take to load its weights and become ready: the startup
# probe's budget, and how long the gateway holds a request while a model scales from zero.
STARTUP_SECONDS: dict[str, int] = {"vllm": 1800, "llamacpp": 600, "sim": 120}
Dtype = Literal["auto", "half", "float16", "bfloat16", "float32"]
Quantization = Literal["awq", "gptq", "fp8", "bitsandbytes", "gguf"]
Fraction = Annotated[float, Field(gt=0.0, le=1.0)]


class LoraAdapter(SpecModel):
    """A LoRA adapter served beside the base model under its own name."""

    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
    """Model name clients use for the adapter."""
    uri: str
    """Source of the adapter (same URI forms as spec.model.uri); pulled with the model."""


class EngineTuning(SpecModel):
    """Options that a disaggregated role may override (see spec.serving.prefill/decode)."""

    gpu_memory_utilization: Fraction | None = None
    """vLLM --gpu-memory-utilization (fraction of GPU memory for weights + KV cache)."""
    max_num_seqs: PositiveInt | None = None
    """Most sequences in one batch (vLLM --max-num-seqs; llama.cpp --parallel)."""
    max_num_batched_tokens: PositiveInt | None = None
    """Token budget per scheduler step (vLLM --max-num-batched-tokens)."""
    tensor_parallel_size: PositiveInt = 1
    """Shard each layer across this many GPUs (vLLM --tensor-parallel-size)."""
    pipeline_parallel_size: PositiveInt = 1
    """Split layers into this many stages (vLLM --pipeline-parallel-size; multinode)."""
    extra_args: tuple[str, ...] = ()
    """Extra command-line arguments appended verbatim."""


class SimOptions(SpecModel):
    """Options of the project's simulator (`kubellm sim`)."""

    profile: str = "llama-3.1-8b-h100"
    """Simulator cost profile (`kubellm sim --profile`; e.g. llama-3.1-8b-h100, tiny)."""
    fixed_ttft_ms: Annotated[float, Field(ge=0)] | None = None
    """Fixed time to first token, overriding the profile."""
    fixed_tpot_ms: Annotated[float, Field(ge=0)] | None = None
    """Fixed time per output token, overriding the profile."""


class LlamaCppOptions(SpecModel):
    """Options of the llama.cpp server."""

    threads: PositiveInt | None = None
    """CPU threads (default: the container's CPU limit)."""
    n_gpu_layers: Annotated[int, Field(ge=0)] = 0
    """Layers offloaded to a GPU; 0 keeps everything on the CPU."""


class Engine(EngineTuning):
    """The engine that serves the model."""

    kind: EngineKind = "vllm"
    """vllm (GPUs), llamacpp (GGUF on CPUs), or sim (the simulator: no GPU, no weights)."""
    image: str | None = None
    """Container image override (default: a pinned image per engine kind)."""
    port: Annotated[int, Field(ge=1024, le=65535)] = 8000
    """Container port of the OpenAI-compatible API."""
    dtype: Dtype = "auto"
    """vLLM --dtype."""
    quantization: Quantization | None = None
    """vLLM --quantization (awq, gptq, fp8...)."""
    max_model_len: PositiveInt | None = None
    """Maximum context length (vLLM --max-model-len; llama.cpp --ctx-size)."""
    enable_prefix_caching: bool = True
    """Reuse KV cache across requests sharing a prefix."""
    enable_chunked_prefill: bool = True
    """Split long prompts into chunks interleaved with decoding."""
    lora_adapters: tuple[LoraAdapter, ...] = ()
    """LoRA adapters (vLLM only)."""
    sim: SimOptions = SimOptions()
    """Simulator options (kind sim)."""
    llamacpp: LlamaCppOptions = LlamaCppOptions()
    """llama.cpp options (kind llamacpp)."""
