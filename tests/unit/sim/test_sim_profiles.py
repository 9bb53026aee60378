"""Profiles: the API-server cost comes from the vLLM engine generation, current vLLM (V1) by default."""

from __future__ import annotations

import pytest

from kubellm.sim.errors import SimConfigError
from kubellm.sim.profiles import FRONTENDS, frontend_of, get_profile, profile_names


@pytest.mark.parametrize(("version", "frontend"), [
    ("0.5.4", "v0"), ("0.6.0", "v0"), ("0.7.3", "v0"), ("0.8.0", "v1"), ("0.21.0", "v1"), ("0.23", "v1"),
    ("1.0.0", "v1"),
])
def test_a_vllm_release_has_the_engine_generation_it_defaulted_to(version: str, frontend: str) -> None:
    assert frontend_of(version) == frontend


@pytest.mark.parametrize("version", ["", "latest", "v0.21", "0"])
def test_a_version_that_is_not_major_minor_is_a_config_error(version: str) -> None:
    with pytest.raises(SimConfigError, match="expected MAJOR.MINOR"):
        frontend_of(version)


@pytest.mark.parametrize("name", [n for n in profile_names() if n != "tiny"])
def test_every_gpu_profile_defaults_to_current_vllm(name: str) -> None:
    profile = get_profile(name)
    assert profile.frontend == "v1"
    assert profile.api_server_s == FRONTENDS["v1"].api_server_s


def test_the_api_server_cost_follows_the_generation() -> None:
    v1 = get_profile("llama-3.1-8b-h100")
    v0 = v1.with_frontend("v0")
    assert (v0.api_server_s, v1.api_server_s) == (0.025, 0.007)
    assert v0.model_dump(exclude={"frontend"}) == v1.model_dump(exclude={"frontend"})
    assert get_profile("tiny").api_server_s == 0.0


def test_every_generation_says_where_its_cost_comes_from() -> None:
    assert all(len(cost.source) > 20 for cost in FRONTENDS.values())
    assert FRONTENDS["v0"].api_server_s > FRONTENDS["v1"].api_server_s > FRONTENDS["none"].api_server_s == 0
