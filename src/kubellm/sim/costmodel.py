"""Step time of one engine iteration (pure): a roofline of compute and memory traffic.

For a step that computes ``T`` new tokens (prefill chunks plus one per decoding
sequence) for ``S`` sequences whose attention reads ``K`` cached tokens in total::

    t_compute = (2 * P * T + 4 * L * H * A) / F
    t_memory  = (W + kv * K) / B
    t_step    = c0 + c_seq * S + max(t_compute, t_memory) + c_tp * T

with P parameters, L layers, H hidden size, A the attention pairs of the prefill chunks
(each new token attends to all tokens before it), F effective FLOP/s, W bytes of
weights, kv bytes of KV per token, B effective memory bandwidth, c0 a fixed per-step
overhead, c_seq a per-sequence cost (sampling, bookkeeping) and c_tp the tensor-parallel
all-reduce time per token. Equations and sources: ``docs/sim.md``.
"""

from __future__ import annotations

from dataclasses import dataclass

from kubellm.sim.profiles import Profile


@dataclass(frozen=True, slots=True)
class StepShape:
    """What a step computes: new tokens, sequences, KV tokens read, attention pairs."""

    new_tokens: int
    num_seqs: int
    kv_read_tokens: int
    attn_pairs: float


def step_time(shape: StepShape, p: Profile) -> float:
    """Seconds one engine step takes on profile *p*."""
    if shape.num_seqs == 0:
        return 0.0
    compute = (2.0 * p.params_b * 1e9 * shape.new_tokens
               + 4.0 * p.num_layers * p.hidden_size * shape.attn_pairs) / p.flops
    memory = (p.weight_bytes + p.kv_bytes_per_token * shape.kv_read_tokens) / p.mem_bandwidth
    return (p.step_overhead_s + p.per_seq_overhead_s * shape.num_seqs + max(compute, memory)
            + p.tp_comm_s_per_token * shape.new_tokens)


def chunk_shape(num_computed: int, num_new: int) -> tuple[int, float]:
    """KV tokens read and attention pairs of computing *num_new* tokens after *num_computed*."""
    kv_read = num_computed + num_new
    pairs = num_new * (num_computed + (num_new + 1) / 2.0)
    return kv_read, pairs


def kv_transfer_time(num_tokens: int, p: Profile, bandwidth_bytes_s: float) -> float:
    """Seconds to move *num_tokens* tokens of KV from a prefill to a decode instance."""
    return num_tokens * p.kv_bytes_per_token / bandwidth_bytes_s
