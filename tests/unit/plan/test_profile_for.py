"""`kubellm plan` picks the simulator profile from the spec's accelerator, or refuses naming the flag."""

from __future__ import annotations

from pathlib import Path

import pytest

from kubellm.plan.command import profile_for
from kubellm.plan.errors import PlanConfigError
from kubellm.spec import LLMService, load_spec

QUICKSTART = Path(__file__).resolve().parents[3] / "examples" / "quickstart.yaml"


def _on(accelerator: str, count: int = 1) -> LLMService:
    svc = load_spec(QUICKSTART)
    data = svc.model_dump(by_alias=True, exclude_none=True)
    data["spec"].setdefault("resources", {})["accelerator"] = {"type": accelerator, "count": count}
    return LLMService.model_validate(data)


@pytest.mark.parametrize(("accelerator", "count", "profile"), [
    ("nvidia-h100-80gb", 1, "llama-3.1-8b-h100"),
    ("nvidia-h100-80gb", 4, "llama-3.1-70b-h100-tp4"),
    ("nvidia-l4", 1, "qwen2.5-7b-l4"),
    ("nvidia-tesla-a100", 1, "llama-3.1-8b-a100-40gb"),  # GKE's name for the 40 GB A100
])
def test_the_accelerator_names_the_profile(accelerator: str, count: int, profile: str) -> None:
    assert profile_for(_on(accelerator, count), None).name == profile


def test_an_accelerator_without_a_profile_is_refused_naming_the_flag() -> None:
    with pytest.raises(PlanConfigError, match="has no sim profile; pass --profile"):
        profile_for(_on("nvidia-a100-80gb"), None)  # an 80 GB A100 has twice the KV cache: not the 40 GB profile
