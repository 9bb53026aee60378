"""Step time: monotone in the work of a step; profiles land near published vLLM figures."""

from __future__ import annotations

import pytest

from kubellm.sim.costmodel import StepShape, chunk_shape, kv_transfer_time, step_time
from kubellm.sim.profiles import get_profile, profile_names
from kubellm.sim.errors import SimConfigError


@pytest.mark.parametrize("name", profile_names())
def test_step_time_grows_with_tokens_seqs_and_kv(name: str) -> None:
    p = get_profile(name)
    base = step_time(StepShape(1, 1, 1000, 0.0), p)
    assert step_time(StepShape(4096, 1, 5096, 4096 * 2048.0), p) > base  # prefill tokens
    assert step_time(StepShape(64, 64, 64 * 1000, 0.0), p) > base  # decode sequences
    assert step_time(StepShape(1, 1, 100_000, 0.0), p) > base  # KV read
    assert step_time(StepShape(0, 0, 0, 0.0), p) == 0.0


def test_decode_is_memory_bound_and_prefill_compute_bound() -> None:
    p = get_profile("llama-3.1-8b-h100")
    one = step_time(StepShape(1, 1, 100, 0.0), p)
    eight = step_time(StepShape(8, 8, 800, 0.0), p)
    assert eight < 1.1 * one  # a few more decode rows cost almost nothing: weights dominate
    kv, pairs = chunk_shape(0, 8192)
    assert step_time(StepShape(8192, 1, kv, pairs), p) > 20 * one


def test_single_stream_tpot_matches_published_range() -> None:
    """vLLM serves Llama 3.1 8B bf16 on one H100 at roughly 6-8 ms per token at batch 1."""
    p = get_profile("llama-3.1-8b-h100")
    tpot = step_time(StepShape(1, 1, 1000, 0.0), p)
    assert 0.006 <= tpot <= 0.008


def test_kv_transfer_time_scales_with_tokens() -> None:
    p = get_profile("llama-3.1-8b-h100")
    assert kv_transfer_time(2000, p, 25e9) == pytest.approx(2 * kv_transfer_time(1000, p, 25e9))


def test_unknown_profile_lists_known_ones() -> None:
    with pytest.raises(SimConfigError, match="llama-3.1-8b-h100"):
        get_profile("nope")
