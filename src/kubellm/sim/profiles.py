"""Named engine profiles: hardware and model figures the cost model runs on.

Each figure's source is in ``docs/sim.md``; the effective bandwidth/FLOP figures are
datasheet peaks times an efficiency calibrated so that the predicted single-request
TPOT and prefill speed match published vLLM measurements for that model and GPU.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from kubellm.sim.errors import SimConfigError

Frontend = Literal["v0", "v1", "none"]


@dataclass(frozen=True)
class FrontendCost:
    """The time a client's TTFT includes before the engine sees a request, and where it comes from."""

    api_server_s: float
    source: str


# One API-server cost per vLLM engine generation (docs/sim.md, "Published figures beside the model").
FRONTENDS: dict[Frontend, FrontendCost] = {
    "v0": FrontendCost(0.025, "fitted to Lambda's two vLLM 0.6 (V0) runs: their TTFT was a third below the "
                              "model's without it; checked on nothing else"),
    "v1": FrontendCost(0.0070, "fitted to ONE run, InferenceBench's vLLM 0.21 (V1) H100 sweep at C=1: "
                               "TTFT 13.98 ms less the model's 7.01 ms first step; its C=4 (22.75 ms) is "
                               "not held (docs/sim.md)"),
    "none": FrontendCost(0.0, "no API server (synthetic test profiles)"),
}

V1_SINCE = (0, 8)  # vLLM 0.8.0 made the V1 engine (engine core in a process apart from the API server) the default
# vLLM 0.14.0 turned async scheduling on by default (PR #27614; --no-async-scheduling turns it off)
ASYNC_SCHEDULING_SINCE = (0, 14)


def _release(vllm_version: str) -> tuple[int, int]:
    try:
        major, minor = (int(part) for part in vllm_version.split(".")[:2])
    except ValueError:
        raise SimConfigError(f"vLLM version {vllm_version!r}: expected MAJOR.MINOR[.PATCH], e.g. '0.21.0'") from None
    return major, minor


def frontend_of(vllm_version: str) -> Frontend:
    """The engine generation of a vLLM release: ``"0.6.0"`` -> ``"v0"``, ``"0.21"`` -> ``"v1"``."""
    return "v1" if _release(vllm_version) >= V1_SINCE else "v0"


def async_scheduling_of(vllm_version: str) -> bool:
    """Whether a vLLM release schedules asynchronously by default: from 0.14 on."""
    return _release(vllm_version) >= ASYNC_SCHEDULING_SINCE


class Profile(BaseModel):
    """Cost-model parameters of one model on one hardware setup."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    description: str
    params_b: float = Field(gt=0, description="parameters, billions")
    weight_bytes: float = Field(gt=0, description="bytes of weights read per step (all GPUs)")
    num_layers: int = Field(gt=0)
    hidden_size: int = Field(gt=0)
    kv_bytes_per_token: float = Field(gt=0, description="2 * layers * kv_heads * head_dim * dtype bytes")
    tensor_parallel: int = Field(1, ge=1)
    mem_bandwidth: float = Field(gt=0, description="effective HBM bandwidth, bytes/s, all GPUs")
    flops: float = Field(gt=0, description="effective dense bf16 FLOP/s, all GPUs")
    step_overhead_s: float = Field(ge=0, description="fixed CPU/launch time per engine step")
    per_seq_overhead_s: float = Field(ge=0, description="sampling/bookkeeping per scheduled sequence")
    tp_comm_s_per_token: float = Field(0.0, ge=0, description="all-reduce time per batched token (TP>1)")
    frontend: Frontend = Field("v1", description="vLLM engine generation whose API-server cost a client's TTFT "
                                                 "includes (FRONTENDS); current vLLM is v1")
    async_scheduling: bool = Field(True, description="vLLM's async scheduling (default from 0.14): a request arriving "
                                                     "while a step runs waits for the step after next "
                                                     "(scheduler.admission_cutoff); current vLLM has it on")
    num_gpu_blocks: int = Field(gt=0, description="KV cache blocks of 16 tokens")
    max_model_len: int = Field(gt=0)
    max_num_seqs: int = Field(gt=0)
    max_num_batched_tokens: int = Field(gt=0)

    @property
    def api_server_s(self) -> float:
        """Per-request API-server time a client's TTFT includes (HTTP, tokenization, the frontend-engine hop)."""
        return FRONTENDS[self.frontend].api_server_s

    def with_frontend(self, frontend: Frontend) -> Profile:
        """This profile served by another vLLM engine generation."""
        return self.model_copy(update={"frontend": frontend})

    def with_vllm(self, vllm_version: str) -> Profile:
        """This profile served by vLLM release *vllm_version* with its defaults (generation, async scheduling)."""
        return self.model_copy(update={"frontend": frontend_of(vllm_version),
                                       "async_scheduling": async_scheduling_of(vllm_version)})


def _llama_8b(name: str, gpu: str, *, bandwidth: float, flops: float, num_gpu_blocks: int,
              max_num_seqs: int, max_num_batched_tokens: int) -> Profile:
    """Llama 3.1 8B Instruct in bf16 on one GPU of the datasheet's *bandwidth* (bytes/s) and
    dense bf16 *flops*, at the H100 profile's efficiencies (80 % of bandwidth, 55 % of flops)."""
    return Profile(
        name=name,
        description=f"Llama 3.1 8B Instruct, bf16, one {gpu}",
        params_b=8.03, weight_bytes=16.06e9, num_layers=32, hidden_size=4096,
        kv_bytes_per_token=2 * 32 * 8 * 128 * 2,
        mem_bandwidth=bandwidth * 0.80, flops=flops * 0.55,
        step_overhead_s=0.0010, per_seq_overhead_s=0.000012,
        num_gpu_blocks=num_gpu_blocks, max_model_len=8192, max_num_seqs=max_num_seqs,
        max_num_batched_tokens=max_num_batched_tokens,
    )


def _llama_8b_h100() -> Profile:
    return _llama_8b("llama-3.1-8b-h100", "H100 SXM 80GB", bandwidth=3.35e12, flops=989e12,
                     num_gpu_blocks=28_000, max_num_seqs=1024, max_num_batched_tokens=8192)


def _llama_8b_a100_40gb() -> Profile:
    return _llama_8b("llama-3.1-8b-a100-40gb", "A100 SXM4 40GB", bandwidth=1.555e12, flops=312e12,
                     num_gpu_blocks=10_000, max_num_seqs=256, max_num_batched_tokens=2048)


def _qwen_7b_l4() -> Profile:
    return Profile(
        name="qwen2.5-7b-l4",
        description="Qwen2.5 7B Instruct, bf16, one NVIDIA L4 24GB",
        params_b=7.62, weight_bytes=15.2e9, num_layers=28, hidden_size=3584,
        kv_bytes_per_token=2 * 28 * 4 * 128 * 2,
        mem_bandwidth=300e9 * 0.85, flops=121e12 * 0.55,
        step_overhead_s=0.0015, per_seq_overhead_s=0.000020,
        num_gpu_blocks=5_300, max_model_len=8192, max_num_seqs=256, max_num_batched_tokens=2048,
    )


def _llama_70b_h100_tp4() -> Profile:
    return Profile(
        name="llama-3.1-70b-h100-tp4",
        description="Llama 3.1 70B Instruct, bf16, four H100 SXM 80GB, tensor parallel 4",
        params_b=70.6, weight_bytes=141.2e9, num_layers=80, hidden_size=8192,
        kv_bytes_per_token=2 * 80 * 8 * 128 * 2, tensor_parallel=4,
        mem_bandwidth=4 * 3.35e12 * 0.75, flops=4 * 989e12 * 0.50,
        step_overhead_s=0.0020, per_seq_overhead_s=0.000015, tp_comm_s_per_token=0.4e-6,
        num_gpu_blocks=26_000, max_model_len=8192, max_num_seqs=1024, max_num_batched_tokens=8192,
    )


def _tiny_cpu() -> Profile:
    return Profile(
        name="tiny",
        description="A tiny fast engine for tests: small KV cache, short steps",
        params_b=0.1, weight_bytes=0.2e9, num_layers=4, hidden_size=512,
        kv_bytes_per_token=2 * 4 * 4 * 64 * 2,
        mem_bandwidth=100e9, flops=20e12,
        step_overhead_s=0.0005, per_seq_overhead_s=0.000010, frontend="none",
        num_gpu_blocks=512, max_model_len=4096, max_num_seqs=32, max_num_batched_tokens=1024,
    )


_BUILDERS = {p().name: p for p in (_llama_8b_h100, _llama_8b_a100_40gb, _qwen_7b_l4, _llama_70b_h100_tp4, _tiny_cpu)}


def profile_names() -> list[str]:
    return sorted(_BUILDERS)


def get_profile(name: str) -> Profile:
    """The profile called *name*; :class:`SimConfigError` lists the known names otherwise."""
    try:
        return _BUILDERS[name]()
    except KeyError:
        raise SimConfigError(f"unknown sim profile {name!r}; choose one of {', '.join(profile_names())}") from None
