"""Helpers shared by the simulator's unit tests."""

from __future__ import annotations

import random

import pytest

from kubellm.sim.profiles import Profile, get_profile
from kubellm.sim.scheduler import Limits


def random_prompt(n: int, seed: int) -> list[int]:
    rng = random.Random(seed)
    return [rng.randrange(1 << 20) for _ in range(n)]


@pytest.fixture
def h100() -> Profile:
    return get_profile("llama-3.1-8b-h100")


@pytest.fixture
def h100_limits(h100: Profile) -> Limits:
    return Limits(h100.max_num_seqs, h100.max_num_batched_tokens, 16)
